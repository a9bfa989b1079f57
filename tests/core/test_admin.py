"""The read-only admin base: records written elsewhere are only looked at in the admin."""

import pytest
from django.urls import reverse
from django.utils import timezone

from fleet import services
from fleet.models import HeartbeatDeadLetter

pytestmark = pytest.mark.django_db


def test_a_command_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, kiosk):
    command = services.command_enqueue(kiosk=kiosk, kind="restart")

    assert admin_client.get(reverse("admin:fleet_remotecommand_add")).status_code == 403
    assert admin_client.get(reverse("admin:fleet_remotecommand_delete", args=[command.pk])).status_code == 403
    page = admin_client.get(reverse("admin:fleet_remotecommand_change", args=[command.pk])).content.decode()
    assert 'name="_save"' not in page


def test_a_heartbeat_set_aside_can_be_deleted_once_looked_into_but_not_edited(admin_client, kiosk):
    letter = HeartbeatDeadLetter.objects.create(
        entry_id="1-0", kiosk=kiosk, set_aside_at=timezone.now(), body=b"{}", error="bad"
    )

    assert admin_client.get(reverse("admin:fleet_heartbeatdeadletter_add")).status_code == 403
    admin_client.post(reverse("admin:fleet_heartbeatdeadletter_delete", args=[letter.pk]), {"post": "yes"})
    assert not HeartbeatDeadLetter.objects.filter(pk=letter.pk).exists()


def test_imported_journal_and_ledger_files_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:reconciliation_journalfile_add")).status_code == 403
    assert admin_client.get(reverse("admin:reconciliation_ledgerfile_add")).status_code == 403
