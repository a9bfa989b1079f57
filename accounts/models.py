from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Region(models.Model):
    """A district of the city; the unit of an operator's responsibility (region scoping)."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        # The table keeps the name it was created under in fleet: the model moved, the rows did not.
        db_table = "fleet_region"
        ordering = ["code"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")

    def __str__(self) -> str:
        return self.name


class OperatorProfile(models.Model):
    """Which regions of the fleet a console user is responsible for (region scoping)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_profile", verbose_name=_("user")
    )
    # Sees every region, present and future (city-wide operations managers, auditors).
    all_regions = models.BooleanField(_("all regions"), default=False)
    regions = models.ManyToManyField(Region, blank=True, related_name="operators", verbose_name=_("regions"))
    phone = models.CharField(_("phone"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("operator profile")
        verbose_name_plural = _("operator profiles")

    def __str__(self) -> str:
        return str(self.user)
