"""Admin for how incidents are answered — playbooks, SLA targets, escalation chains, notification channels — and
read-only views of incidents, their timelines and their notifications. Incidents are worked in the console; here
nothing of an incident's record is changed or deleted.

A playbook's steps are published, never edited: saving the playbook with changed steps publishes version n + 1,
and incidents keep the version they started with. A channel's signing secret is never shown back; left empty on
change, it stays as it was."""

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, error_column, person_column
from core.people import person_name
from incidents import notify
from incidents.models import (
    EscalationChain,
    EscalationStep,
    Incident,
    Notification,
    NotificationChannel,
    Playbook,
    PlaybookVersion,
    SlaPolicy,
    TimelineEntry,
)

STEP_KEY = re.compile(r"^([a-z][a-z0-9_]{0,31})\s*[:：]\s*(.+)$")


def steps_text(steps) -> str:
    return "\n".join(f"{step.get('key')}: {step.get('text')}" for step in steps or [])


def parse_steps(text: str) -> list[dict]:
    """One step per line, "key: text" (the key is what the checklist records) or only the text (a key is made)."""
    steps, seen = [], set()
    for n, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = STEP_KEY.match(line)
        key, step = (match.group(1), match.group(2).strip()) if match else (f"step_{len(steps) + 1}", line)
        if len(step) > 300:
            raise ValidationError(_("Line %(n)s: a step is at most 300 characters.") % {"n": n})
        if key in seen:
            raise ValidationError(_("Line %(n)s: the key %(key)s is used twice.") % {"n": n, "key": key})
        seen.add(key)
        steps.append({"key": key, "text": step})
    if not steps:
        raise ValidationError(_("A playbook has at least one step."))
    return steps


class PlaybookForm(forms.ModelForm):
    steps = forms.CharField(
        label=_("steps (one per line)"),
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text=_(
            'One step per line, as "key: text" (e.g. "power: 检查电源线"). Changed steps are published as a new '
            "version; incidents already open keep theirs."
        ),
    )
    note = forms.CharField(label=_("what changed"), max_length=300, required=False)

    class Meta:
        model = Playbook
        fields = ["fault_kind", "title", "recovery_min"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.current if self.instance.pk else None
        if current is not None:
            self.fields["steps"].initial = steps_text(current.steps)

    def clean_steps(self):
        return parse_steps(self.cleaned_data["steps"])


class PlaybookVersionInline(admin.TabularInline):
    """Published versions: read, never edited."""

    model = PlaybookVersion
    extra = 0
    can_delete = False
    fields = ["number", "step_list", "note", "created_at", "created_by_name"]
    readonly_fields = fields
    ordering = ["-number"]

    created_by_name = person_column("created_by", _("published by"))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("steps"))
    def step_list(self, obj):
        return format_html(
            "<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((step.get("text", ""),) for step in obj.steps))
        )


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    form = PlaybookForm
    inlines = [PlaybookVersionInline]
    list_display = ["title", "fault_kind", "recovery_min", "version"]
    fields = ["fault_kind", "title", "recovery_min", "steps", "note"]

    def has_delete_permission(self, request, obj=None):
        return False  # incidents point at its versions

    @admin.display(description=_("version"))
    def version(self, obj):
        current = obj.current
        return f"v{current.number}" if current else self.get_empty_value_display()

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        steps = form.cleaned_data["steps"]
        current = Playbook.objects.select_for_update().get(pk=obj.pk).current
        if current is not None and current.steps == steps:
            return
        PlaybookVersion.objects.create(
            playbook=obj,
            number=(current.number if current else 0) + 1,
            steps=steps,
            note=form.cleaned_data.get("note", "")[:300],
            created_by=request.user,
        )
        messages.info(request, gettext("New version of the steps published."))


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ["severity", "acknowledge_min", "remote_min", "onsite_min", "resolve_min", "clock"]
    list_filter = ["clock"]


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 1
    fields = ["position", "role", "user", "wait_min"]
    autocomplete_fields = ["user"]
    ordering = ["position"]


@admin.register(EscalationChain)
class EscalationChainAdmin(admin.ModelAdmin):
    inlines = [EscalationStepInline]
    list_display = ["name", "severity", "region", "step_count"]
    list_filter = ["severity", "region"]
    list_select_related = ["region"]

    @admin.display(description=_("steps"))
    def step_count(self, obj):
        return obj.steps.count()


class NotificationChannelForm(forms.ModelForm):
    secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("DingTalk robots with signing (加签). Never shown again; leave empty to keep the one stored."),
    )

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "target", "secret", "region", "role", "max_severity", "security", "active"]

    def clean_secret(self):
        value = (self.cleaned_data.get("secret") or "").strip()
        return value or (self.instance.secret if self.instance.pk else "")

    def clean(self):
        data = super().clean()
        kind, target = data.get("kind"), (data.get("target") or "").strip()
        if kind == NotificationChannel.Kind.WEBHOOK and target:
            try:
                notify.apprise_json_url(target)
            except notify.SendError as error:
                self.add_error("target", str(error))
        if kind == NotificationChannel.Kind.EMAIL and target:
            try:
                forms.EmailField().clean(target)
            except ValidationError:
                self.add_error("target", _("Enter an e-mail address."))
        return data


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = ["name", "kind", "shown_target", "region", "role", "max_severity", "security", "signed", "active"]
    list_filter = ["kind", "active", "security", "role", "region"]
    search_fields = ["name"]
    list_select_related = ["region"]

    @admin.display(description=_("target"))
    def shown_target(self, obj):
        """The address for e-mail and webhooks; a robot's key or token is a credential, shown by its end only."""
        if obj.kind in (NotificationChannel.Kind.WECOM, NotificationChannel.Kind.DINGTALK):
            return f"…{obj.target[-4:]}" if len(obj.target) > 4 else "…"
        return obj.target

    @admin.display(description=_("signed"), boolean=True)
    def signed(self, obj):
        return bool(obj.secret)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["incident_ref", "sent_to", "what", "status", "attempts", "last_error_text", "created_at", "sent_at"]
    list_filter = ["status", "channel__kind", "channel"]
    search_fields = ["event", "channel__name", "recipient__username", "recipient__last_name"]
    list_select_related = ["incident", "channel", "recipient"]
    actions = ["send_again"]
    fields = [
        "incident",
        "sent_to",
        "what",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "sent_at",
        "subject",
        "body",
    ]
    readonly_fields = fields

    last_error_text = error_column("last_error", _("last error"))

    @admin.display(description=_("incident"), ordering="incident_id")
    def incident_ref(self, obj):
        if obj.incident_id is None:
            return format_html('<span title="{}">{}</span>', obj.notice_key, obj.subject or obj.notice_key)
        return format_html('<span title="{}">{}</span>', obj.incident.title, obj.incident.reference)

    @admin.display(description=_("sent to"))
    def sent_to(self, obj):
        if obj.channel_id:
            return obj.channel.name
        return person_name(obj.recipient)

    @admin.display(description=_("event"), ordering="event")
    def what(self, obj):
        return format_html('<span title="{}">{}</span>', obj.event, notify.event_headline(obj.event))

    def has_manage_permission(self, request):
        return request.user.has_perm("incidents.manage_response")

    @admin.action(description=_("Send again (given up ones)"), permissions=["manage"])
    def send_again(self, request, queryset):
        again = 0
        for notification in queryset.filter(status=Notification.Status.GAVE_UP):
            notify.notification_send_again(notification=notification, actor=request.user)
            again += 1
        if again:
            self.message_user(
                request,
                ngettext("%(n)d notification will be sent again.", "%(n)d notifications will be sent again.", again)
                % {"n": again},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, gettext("Only notifications that were given up are sent again."), messages.WARNING
            )


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    """Looked at here; worked in the console (every change there is a service with its timeline entry)."""

    list_display = [
        "shown_reference",
        "title",
        "site",
        "region",
        "severity",
        "state",
        "opened_at",
        "acknowledged_at",
        "assignee_name",
        "is_group",
    ]
    list_filter = ["state", "severity", "fault_kind", "source", "is_group", "region"]
    search_fields = ["title", "kiosk__serial", "site__name"]
    list_select_related = ["site", "region", "assignee"]
    date_hierarchy = "opened_at"
    fields = [
        "shown_reference",
        "title",
        "kiosk",
        "site",
        "region",
        "part_of",
        "is_group",
        "fault_kind",
        "category",
        "component",
        "source",
        "severity",
        "severity_reason",
        "state",
        "occurrences",
        "opened_at",
        "last_seen_at",
        "acknowledged_at",
        "acknowledged_by_name",
        "first_remote_at",
        "onsite_at",
        "resolved_at",
        "closed_at",
        "resolution",
        "cancel_reason",
        "reopened_count",
        "assignee_name",
        "reporter_name",
        "reporter_contact",
        "symptom",
        "reported_by_name",
        "playbook_version",
        "acknowledge_due_at",
        "remote_due_at",
        "onsite_due_at",
        "resolve_due_at",
        "escalation_step",
        "next_escalation_at",
        "healthy_since",
        "onsite_proposed_at",
        "onsite_proposed_reason",
        "timeline_table",
    ]
    readonly_fields = fields

    assignee_name = person_column("assignee", _("assignee"))
    acknowledged_by_name = person_column("acknowledged_by", _("acknowledged by"))
    reported_by_name = person_column("reported_by", _("recorded by"))

    @admin.display(description=_("reference"), ordering="id")
    def shown_reference(self, obj):
        return obj.reference

    @admin.display(description=_("part of the mass outage"))
    def part_of(self, obj):
        if obj.parent_id is None:
            return self.get_empty_value_display()
        url = reverse("admin:incidents_incident_change", args=[obj.parent_id])
        return format_html('<a href="{}">{}</a>', url, obj.parent)

    @admin.display(description=_("timeline entries"))
    def timeline_table(self, obj):
        """The incident's record (执行记录), oldest first: time, kind (its code in the tooltip), person, measure,
        result. Shown as a table rather than an inline, whose row titles would show the entries' codes."""
        entries = obj.timeline.select_related("actor").order_by("at", "id")[:500]
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td title="{}">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    date_format(timezone.localtime(entry.at), "Y-m-d H:i:s"),
                    entry.kind,
                    entry.get_kind_display(),
                    person_name(entry.actor) if entry.actor_id else gettext("System"),
                    entry.measure,
                    entry.result,
                )
                for entry in entries
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            gettext("time"),
            gettext("kind"),
            gettext("person"),
            gettext("measure"),
            gettext("result"),
            rows,
        )


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdmin):
    list_display = ["incident", "at", "kind", "actor_name", "measure", "result"]
    list_filter = ["kind"]
    search_fields = ["measure", "result"]
    list_select_related = ["incident", "actor"]
    fields = ["incident", "at", "kind", "actor_name", "measure", "result", "data"]
    readonly_fields = fields

    actor_name = person_column("actor", _("person"), nobody=pgettext_lazy("incident", "System"))
