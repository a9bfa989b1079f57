"""The incidents admin reads in Chinese; a playbook's changed steps are published as a new version and never
rewrite an old one; a channel's secret is never shown back; incidents, timelines and notifications are only looked
at, and a given-up notification can be sent again."""

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from incidents.models import (
    Incident,
    Notification,
    NotificationChannel,
    Playbook,
    PlaybookVersion,
    TimelineEntry,
)
from tests.factories import UserFactory
from tests.incidents.conftest import beat, run_engine
from tests.test_admin_chinese import _english, _read

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]


@pytest.fixture
def root(client):
    user = UserFactory(username="root", first_name="强", last_name="李", is_staff=True, is_superuser=True)
    client.force_login(user)
    client.cookies["django_language"] = "zh-hans"
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    return user


@pytest.fixture
def one_of_everything(make_kiosk, root, region):
    NotificationChannel.objects.create(
        name="值班群（钉钉）", kind="dingtalk", target="ding-token-abcd", secret="SECvery-secret-value"
    )
    make_kiosk("KS-50000")
    kiosk = make_kiosk("KS-50001")
    beat(kiosk, receipt_printer="hardware_error")
    run_engine()
    return Incident.objects.get(kiosk=kiosk)


def _registered():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "incidents"
    ]


def test_every_incidents_admin_page_reads_in_chinese(client, one_of_everything, root):
    assert len(_registered()) == 7
    untranslated = {}
    for model, model_admin in _registered():
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        listing = client.get(reverse(f"{name}_changelist"))
        assert listing.status_code == 200, opts.label
        page = _read(listing)
        assert page.headers, opts.label
        if english := _english(page.headers + page.filters):
            untranslated[opts.label] = english
        pages = [reverse(f"{name}_change", args=[model_admin.get_queryset(None).first().pk])]
        if model_admin.has_add_permission(type("Request", (), {"user": root})()):
            pages.append(reverse(f"{name}_add"))
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            if english := _english(_read(response).labels):
                untranslated[url] = english
    assert untranslated == {}


def test_changed_steps_publish_a_new_version_and_leave_the_old_one_as_it_was(client, one_of_everything, root):
    playbook = Playbook.objects.get(fault_kind="module_failure")
    old = playbook.current
    url = reverse("admin:incidents_playbook_change", args=[playbook.pk])
    form = client.get(url).content.decode()
    assert "driver: 检查该模块的驱动和配置" in form

    response = client.post(
        url,
        {
            "fault_kind": "module_failure",
            "title": playbook.title,
            "recovery_min": 5,
            "steps": "driver: 检查该模块的驱动和配置\n拔插该模块的数据线\n",
            "note": "增加拔插数据线",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    latest = playbook.current
    assert latest.number == old.number + 1
    assert latest.steps == [
        {"key": "driver", "text": "检查该模块的驱动和配置"},
        {"key": "step_2", "text": "拔插该模块的数据线"},
    ]
    assert (latest.note, latest.created_by) == ("增加拔插数据线", root)
    assert PlaybookVersion.objects.get(pk=old.pk).steps == old.steps
    assert one_of_everything.playbook_version_id == old.pk  # the open incident keeps its version


def test_saving_a_playbook_without_changed_steps_publishes_nothing(client, one_of_everything, root):
    playbook = Playbook.objects.get(fault_kind="module_failure")
    before = playbook.versions.count()
    from incidents.admin import steps_text

    client.post(
        reverse("admin:incidents_playbook_change", args=[playbook.pk]),
        {
            "fault_kind": "module_failure",
            "title": "功能模块失效（改名）",
            "recovery_min": 10,
            "steps": steps_text(playbook.current.steps),
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )

    playbook.refresh_from_db()
    assert (playbook.title, playbook.versions.count()) == ("功能模块失效（改名）", before)


def test_a_channels_secret_is_never_shown_and_kept_when_left_empty(client, one_of_everything, root):
    channel = NotificationChannel.objects.get()
    listing = client.get(reverse("admin:incidents_notificationchannel_changelist")).content.decode()
    assert "SECvery-secret-value" not in listing and "ding-token-abcd" not in listing
    assert "…abcd" in listing
    url = reverse("admin:incidents_notificationchannel_change", args=[channel.pk])
    assert "SECvery-secret-value" not in client.get(url).content.decode()

    client.post(
        url,
        {
            "name": "值班群（钉钉）",
            "kind": "dingtalk",
            "target": "ding-token-abcd",
            "secret": "",
            "region": "",
            "role": "",
            "max_severity": 4,
            "active": "on",
        },
    )

    channel.refresh_from_db()
    assert channel.secret == "SECvery-secret-value"


def test_incidents_and_their_timeline_cannot_be_changed_or_deleted_here(client, one_of_everything, root):
    incident = one_of_everything
    entry = incident.timeline.first()
    assert client.get(reverse("admin:incidents_incident_add")).status_code == 403
    assert client.post(reverse("admin:incidents_incident_delete", args=[incident.pk])).status_code == 403
    assert client.post(reverse("admin:incidents_timelineentry_delete", args=[entry.pk])).status_code == 403
    page = client.get(reverse("admin:incidents_incident_change", args=[incident.pk])).content.decode()
    assert incident.reference in page and "检测到故障" in page
    assert TimelineEntry.objects.filter(pk=entry.pk).exists()


def test_a_given_up_notification_is_sent_again_from_the_admin(client, one_of_everything, root):
    row = Notification.objects.get()
    Notification.objects.filter(pk=row.pk).update(status="gave_up", attempts=8, next_attempt_at=None)
    listing = reverse("admin:incidents_notification_changelist")
    assert "已放弃" in client.get(listing).content.decode()

    response = client.post(listing, {"action": "send_again", "_selected_action": [row.pk]}, follow=True)

    assert "1 条通知将重新发送" in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.next_attempt_at <= timezone.now()
    assert one_of_everything.timeline.filter(kind="note", actor=root).exists()
