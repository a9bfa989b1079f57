from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OperatorProfile(models.Model):
    """Which regions of the fleet a console user is responsible for (region scoping)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_profile")
    # Sees every region, present and future (city-wide operations managers, auditors).
    all_regions = models.BooleanField(_("all regions"), default=False)
    regions = models.ManyToManyField("fleet.Region", blank=True, related_name="operators", verbose_name=_("regions"))
    phone = models.CharField(_("phone"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("operator profile")
        verbose_name_plural = _("operator profiles")

    def __str__(self) -> str:
        return str(self.user)
