"""The administration speaks Chinese: every changelist, add and change page of reconciliation, accounts and auth
answers, and none of their column headers, filter titles or field labels is left in English. People are named
(李强), roles are named (财务人员), not shown by their login or code."""

import re
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from reconciliation import services
from reconciliation.models import SettlementWindow, Tariff, WorkingDayOverride
from tests.factories import KioskFactory, UserFactory

CJK = re.compile(r"[\u3400-\u9fff]")
APPS = ("reconciliation", "accounts", "auth")
# Text that is the same in both languages.
NEUTRAL = {"ID", "SHA-256 校验值"}
JOURNAL = (
    "seq,txn_id,occurred_at,amount,channel,channel_ref,payer_ref,service_code,status\n"
    "1,T1,{day}T10:00:00+08:00,20.00,wechat,ORD-1,A1,ID_CARD,success\n"
    "2,T2,{day}T10:05:00+08:00,abc,wechat,ORD-2,A2,ID_CARD,success\n"
)


class _AdminPage(HTMLParser):
    """Collects what a person reads as labels: the changelist's column headers (not the navigation's, which
    only screen readers read), filter titles, form field labels."""

    def __init__(self):
        super().__init__()
        self.headers, self.filters, self.labels = [], [], []
        self._in_results = self._in_thead = self._in_th = self._in_label = False
        self._text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "result_list":
            self._in_results = True
        elif tag == "thead" and self._in_results:
            self._in_thead = True
        elif tag == "th" and self._in_thead and "action-checkbox-column" not in (attrs.get("class") or ""):
            self._in_th, self._text = True, []
        elif tag == "details" and "data-filter-title" in attrs:
            self.filters.append(attrs["data-filter-title"])
        elif tag == "label":
            self._in_label, self._text = True, []

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_thead = self._in_results = False
        elif tag == "th" and self._in_th:
            self._in_th = False
            self.headers.append("".join(self._text).strip())
        elif tag == "label" and self._in_label:
            self._in_label = False
            self.labels.append("".join(self._text).strip().rstrip(":："))

    def handle_data(self, data):
        if self._in_th or self._in_label:
            self._text.append(data)


def _read(response) -> _AdminPage:
    page = _AdminPage()
    page.feed(response.content.decode())
    return page


def _english(texts) -> list[str]:
    return [t for t in texts if t and t not in NEUTRAL and not CJK.search(t)]


@pytest.fixture
def chinese_admin(client):
    root = UserFactory(username="root", first_name="强", last_name="李", is_staff=True, is_superuser=True)
    client.force_login(root)
    client.cookies["django_language"] = "zh-hans"
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    return client, root


@pytest.fixture
def one_of_everything(chinese_admin):
    """A row of every model the three apps register, so that changelists have rows and change pages exist."""
    _client, root = chinese_admin
    day = timezone.localdate() - timedelta(days=1)
    kiosk = KioskFactory()
    services.journal_ingest(kiosk=kiosk, business_date=day, data=JOURNAL.format(day=day).encode(), uploaded_by=root)
    services.ledger_import(
        data=(
            "channel,channel_ref,settled_at,amount,kiosk_serial,payer_ref,service_code\n"
            f"wechat,ORD-1,{day}T23:00:00+08:00,20.00,{kiosk.serial},A1,ID_CARD\n"
        ).encode(),
        fmt="canonical",
        original_name="wechat.csv",
        actor=root,
    )
    Tariff.objects.create(
        service_code="ID_CARD",
        name="居民身份证工本费",
        amount=Decimal("20.00"),
        effective_from=date(2026, 1, 1),
        accepted_channels=["card", "wechat"],
    )
    WorkingDayOverride.objects.get_or_create(date=date(2026, 10, 11), defaults={"is_working_day": True, "note": "调休"})
    SettlementWindow.objects.get_or_create(channel="card")
    UserFactory(username="fin", first_name="娜", last_name="王", role="finance_officer", regions=[kiosk.site.region])
    return root


def _registered():
    return [
        (model, model_admin) for model, model_admin in admin.site._registry.items() if model._meta.app_label in APPS
    ]


@pytest.mark.django_db
def test_every_admin_changelist_of_reconciliation_accounts_and_auth_reads_in_chinese(chinese_admin, one_of_everything):
    client, _root = chinese_admin
    untranslated = {}
    for model, _model_admin in _registered():
        opts = model._meta
        response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert response.status_code == 200, opts.label
        page = _read(response)
        assert page.headers, f"{opts.label}: no column headers found"
        if english := _english(page.headers + page.filters):
            untranslated[opts.label] = english
    assert untranslated == {}


@pytest.mark.django_db
def test_every_admin_add_and_change_page_labels_its_fields_in_chinese(chinese_admin, one_of_everything):
    client, root = chinese_admin
    untranslated = {}
    for model, model_admin in _registered():
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        pages = [reverse(f"{name}_change", args=[model_admin.get_queryset(None).first().pk])]
        if model_admin.has_add_permission(type("Request", (), {"user": root})()):
            pages.append(reverse(f"{name}_add"))
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            if english := _english(_read(response).labels):
                untranslated[url] = english
    assert untranslated == {}


@pytest.mark.django_db
def test_the_journal_file_list_names_the_uploader_and_says_the_status_in_chinese(chinese_admin, one_of_everything):
    client, _root = chinese_admin
    response = client.get(reverse("admin:reconciliation_journalfile_changelist"))
    text = response.content.decode()
    assert "李强" in text and ">root<" not in text
    assert '<td class="field-status">已解析</td>' in text


@pytest.mark.django_db
def test_the_user_list_shows_names_and_roles_not_logins_and_codes_alone(chinese_admin, one_of_everything):
    client, _root = chinese_admin
    response = client.get(reverse("admin:auth_user_changelist"), {"role": "finance_officer"})
    text = response.content.decode()
    assert "王娜" in text
    assert "财务人员" in text
    assert 'title="finance_officer"' in text  # the code stays at hand, in the tooltip
    assert "李强" not in text  # the filter kept the finance officer only


@pytest.mark.django_db
def test_the_role_groups_are_listed_and_chosen_by_their_chinese_names(chinese_admin, one_of_everything):
    client, _root = chinese_admin
    assert "财务人员" in client.get(reverse("admin:auth_group_changelist")).content.decode()
    fin = Group.objects.get(name="finance_officer")
    page = client.get(reverse("admin:auth_user_change", args=[one_of_everything.pk])).content.decode()
    assert f'<option value="{fin.pk}">财务人员</option>' in page


@pytest.mark.django_db
def test_a_tariffs_channels_are_ticked_by_name_and_listed_by_name(chinese_admin, one_of_everything):
    client, _root = chinese_admin
    listing = client.get(reverse("admin:reconciliation_tariff_changelist")).content.decode()
    assert "银行卡、微信支付" in listing
    tariff = Tariff.objects.get()
    form = client.get(reverse("admin:reconciliation_tariff_change", args=[tariff.pk])).content.decode()
    assert 'type="checkbox" name="accepted_channels" value="wechat"' in form
    assert "支付宝" in form


@pytest.mark.django_db
def test_a_technical_error_in_the_journal_file_list_is_said_in_chinese_with_the_text_in_a_tooltip(
    chinese_admin, one_of_everything
):
    from reconciliation.models import JournalFile

    client, _root = chinese_admin
    JournalFile.objects.update(error="OperationalError: server closed the connection unexpectedly")

    text = client.get(reverse("admin:reconciliation_journalfile_changelist")).content.decode()

    assert '<span title="OperationalError: server closed the connection unexpectedly">技术错误' in text


@pytest.mark.django_db
def test_records_are_titled_in_words_on_their_admin_pages(chinese_admin, one_of_everything):
    from reconciliation.models import JournalFile

    client, _root = chinese_admin
    tariff = Tariff.objects.get()
    journal = JournalFile.objects.select_related("kiosk").get()
    window = SettlementWindow.objects.get(channel="card")

    assert (
        "居民身份证工本费：20.00 元（2026-01-01 起）"
        in client.get(reverse("admin:reconciliation_tariff_change", args=[tariff.pk])).content.decode()
    )
    assert (
        f"{journal.kiosk.serial} 在 {journal.business_date} 的交易流水"
        in client.get(reverse("admin:reconciliation_journalfile_change", args=[journal.pk])).content.decode()
    )
    assert (
        "银行卡：1–3 个工作日"
        in client.get(reverse("admin:reconciliation_settlementwindow_change", args=[window.pk])).content.decode()
    )
