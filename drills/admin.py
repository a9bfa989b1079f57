from django.contrib import admin

from core.admin import ReadOnlyAdmin
from drills.models import Drill, TrainingRecord


@admin.register(Drill)
class DrillAdmin(ReadOnlyAdmin):
    list_display = ["title", "scenario", "region", "window_start", "status"]
    list_filter = ["status", "scenario", "region"]
    search_fields = ["title"]


@admin.register(TrainingRecord)
class TrainingRecordAdmin(admin.ModelAdmin):
    list_display = ["person", "topic", "trained_on", "drill"]
    list_filter = ["trained_on"]
    search_fields = ["topic", "person__username", "person__last_name"]
    autocomplete_fields = ["person"]
    raw_id_fields = ["drill"]
