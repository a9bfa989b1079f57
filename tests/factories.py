"""Factories for test data. Build what a test needs, nothing more."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import OperatorProfile, Region
from accounts.services import roles_sync
from fleet import services
from fleet.models import Kiosk, Site


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"district-{n}")
    name = factory.Sequence(lambda n: f"第{n}区")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    region = factory.SubFactory(RegionFactory)
    code = factory.Sequence(lambda n: f"hall-{n:03d}")
    name = factory.Sequence(lambda n: f"第{n}政务服务大厅")
    address = "人民路 1 号"
    opening_hours = factory.LazyFunction(
        lambda: {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [], "sun": []}
    )


class KioskFactory(factory.django.DjangoModelFactory):
    """A kiosk registered the way operators register one. `kiosk.token` holds its device token."""

    class Meta:
        model = Kiosk

    site = factory.SubFactory(SiteFactory)
    serial = factory.Sequence(lambda n: f"KS-{n:05d}")
    model = "ZW-3000"
    heartbeat_interval_s = 60
    grace_s = 90

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        extra = {
            k: kwargs.pop(k)
            for k in list(kwargs)
            if k not in {"site", "serial", "model", "heartbeat_interval_s", "grace_s", "asset_tag", "installed_on"}
        }
        kiosk, token = services.kiosk_register(**kwargs)
        if extra:
            Kiosk.objects.filter(pk=kiosk.pk).update(**extra)
            kiosk.refresh_from_db()
        kiosk.token = token
        return kiosk


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            if not Group.objects.filter(name=extracted).exists():
                roles_sync()  # a transactional test flushed the groups the migration made
            self.groups.add(Group.objects.get(name=extracted))

    @factory.post_generation
    def regions(self, create, extracted, **kwargs):
        profile, _ = OperatorProfile.objects.get_or_create(user=self)
        if extracted == "all":
            profile.all_regions = True
            profile.save()
        elif extracted:
            profile.regions.set(extracted)
        self.save()
