"""The work-orders admin reads in Chinese; orders are only looked at (with their event log inline); a technician's
profile is kept here: the kiosk models they are trained on, one per line, and their base."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.factories import UserFactory
from tests.test_admin_chinese import _english, _read
from workorders.models import TechnicianProfile

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = UserFactory(username="root", first_name="强", last_name="张", is_staff=True, is_superuser=True)
    client.force_login(user)
    client.cookies["django_language"] = "zh-hans"
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    return user


def _registered():
    return [(m, a) for m, a in admin.site._registry.items() if m._meta.app_label == "workorders"]


def test_every_workorders_admin_page_reads_in_chinese(client, root, order):
    assert {m.__name__ for m, _a in _registered()} == {"WorkOrder", "TechnicianProfile"}
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


def test_an_order_is_shown_with_its_technician_by_name_and_its_event_log_but_not_editable(client, root, order):
    listing = client.get(reverse("admin:workorders_workorder_changelist")).content.decode()
    assert order.reference in listing and "李强" in listing
    page = client.get(reverse("admin:workorders_workorder_change", args=[order.pk])).content.decode()
    assert "王敏" in page  # who dispatched, by name
    assert reverse("workorders:detail", args=[order.uid]) in page
    assert 'name="_save"' not in page
    assert client.get(reverse("admin:workorders_workorder_add")).status_code == 403


def test_a_technicians_models_are_kept_one_per_line(client, root, technician):
    profile = TechnicianProfile.objects.get(user=technician)
    url = reverse("admin:workorders_technicianprofile_change", args=[profile.pk])
    assert "ZW-3000" in client.get(url).content.decode()
    response = client.post(
        url,
        {
            "user": technician.pk,
            "models_trained": "ZW-3000\nZW-5000, ZW-3000\n",
            "base_name": "黄浦站",
            "base_latitude": "31.24",
            "base_longitude": "121.48",
            "on_duty": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    profile.refresh_from_db()
    assert profile.models_trained == ["ZW-3000", "ZW-5000"]


def test_a_base_with_half_a_position_is_refused(client, root, technician):
    profile = TechnicianProfile.objects.get(user=technician)
    response = client.post(
        reverse("admin:workorders_technicianprofile_change", args=[profile.pk]),
        {"user": technician.pk, "models_trained": "", "base_name": "", "base_latitude": "31.2", "base_longitude": ""},
    )
    assert response.status_code == 200
    profile.refresh_from_db()
    assert str(profile.base_longitude) == "121.480000"
