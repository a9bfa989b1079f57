from django.urls import path

from reconciliation import views

app_name = "reconciliation"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("queue/list/", views.queue_list, name="queue-list"),
    path("items/<uuid:uid>/", views.item_detail, name="item"),
    path("items/<uuid:uid>/assign/", views.item_assign, name="item-assign"),
    path("items/<uuid:uid>/match/", views.item_match, name="item-match"),
    path("items/<uuid:uid>/match-candidate/", views.item_match_candidate, name="item-match-candidate"),
    path("items/<uuid:uid>/request-refund/", views.item_request_refund, name="item-request-refund"),
    path("items/<uuid:uid>/refunded/", views.item_refunded, name="item-refunded"),
    path("items/<uuid:uid>/write-off/", views.item_write_off, name="item-write-off"),
    path("items/<uuid:uid>/write-off/approve/", views.item_write_off_approve, name="item-write-off-approve"),
    path("items/<uuid:uid>/write-off/reject/", views.item_write_off_reject, name="item-write-off-reject"),
    path("items/<uuid:uid>/write-off/withdraw/", views.item_write_off_withdraw, name="item-write-off-withdraw"),
    path("items/<uuid:uid>/contact/", views.item_contact, name="item-contact"),
    path("items/<uuid:uid>/reopen/", views.item_reopen, name="item-reopen"),
    path("reports/", views.report, name="report"),
    path("reports/<str:business_date>/", views.report, name="report-day"),
    path("reports/<str:business_date>/report.csv", views.report_csv, name="report-csv"),
    path("reports/<str:business_date>/report.xlsx", views.report_xlsx, name="report-xlsx"),
    path("reports/<str:business_date>/run/", views.report_rerun, name="report-rerun"),
    path("lookup/", views.payment_lookup, name="lookup"),
    path("lookup/items/<uuid:uid>/contact/", views.lookup_contact, name="lookup-contact"),
    path("imports/", views.imports, name="imports"),
    path("imports/ledger/", views.import_ledger, name="import-ledger"),
    path("imports/journal/", views.import_journal, name="import-journal"),
]
