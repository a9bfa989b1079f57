"""Citizen guidance (用户引导): what citizens are told when a kiosk is out of service — the region's online
platform and the fees its kiosks take — and the problems citizens report from a kiosk's sticker."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from fleet.models import Kiosk
from fleet.vocabulary import FaultKind


class RegionGuidance(models.Model):
    """What a region's notices and public pages tell citizens: the online platform, the hotline, the fees."""

    region = models.OneToOneField(Region, on_delete=models.CASCADE, related_name="guidance", verbose_name=_("region"))
    online_platform_name = models.CharField(_("online platform"), max_length=100, blank=True)
    online_platform_url = models.URLField(_("online platform address"), max_length=300, blank=True)
    hotline = models.CharField(_("hotline"), max_length=32, blank=True)
    # One fee name a line, as citizens know them (居民身份证工本费): the public page lists what the kiosks take.
    fees = models.TextField(_("fees payable at the kiosks"), blank=True, help_text=_("One fee a line."))

    class Meta:
        ordering = ["region__code"]
        verbose_name = _("region guidance")
        verbose_name_plural = _("region guidance")
        permissions = [("view_hallguidance", _("Can print notices and stickers and see halls' public pages"))]

    def __str__(self) -> str:
        return str(self.region)

    @property
    def fee_list(self) -> list[str]:
        return [line.strip() for line in self.fees.splitlines() if line.strip()]


class Symptom(models.TextChoices):
    """What a citizen can say went wrong, in their words; each is one fault kind of the contingency plan."""

    SCREEN_BLANK = "screen_blank", _("The screen is black or does not respond")
    FROZEN = "frozen", _("The kiosk is stuck or keeps restarting")
    PAYMENT_FAILS = "payment_fails", _("Paying by card or QR code fails")
    CASH_JAM = "cash_jam", _("Cash or card is not accepted or got stuck")
    NO_RECEIPT = "no_receipt", _("The receipt does not print")
    NETWORK_ERROR = "network_error", _("The screen says “network error”")
    SCREEN_BROKEN = "screen_broken", _("The screen is cracked or keys are broken")
    OTHER = "other", _("Something else")


SYMPTOM_FAULT_KIND = {
    Symptom.SCREEN_BLANK: FaultKind.WONT_START,
    Symptom.FROZEN: FaultKind.SYSTEM_CRASH,
    Symptom.PAYMENT_FAILS: FaultKind.TRANSACTION_FAILURES,
    Symptom.CASH_JAM: FaultKind.TRANSACTION_FAILURES,
    Symptom.NO_RECEIPT: FaultKind.MODULE_FAILURE,
    Symptom.NETWORK_ERROR: FaultKind.CONNECTION_LOST,
    Symptom.SCREEN_BROKEN: FaultKind.PHYSICAL_DAMAGE,
    Symptom.OTHER: FaultKind.MODULE_FAILURE,
}


class CitizenReport(models.Model):
    """A problem a citizen reported from a kiosk's sticker, and the incident it opened or joined. The phone number,
    when given, is stored encrypted (guidance.protect) and shown only to those who work incidents."""

    kiosk = models.ForeignKey(Kiosk, on_delete=models.PROTECT, related_name="+", verbose_name=_("kiosk"))
    symptom = models.CharField(_("symptom"), max_length=24, choices=Symptom.choices)
    text = models.TextField(_("what the citizen wrote"), blank=True)
    phone_encrypted = models.TextField(_("phone (encrypted)"), blank=True, editable=False)
    # The last four digits, enough for a person to tell reports apart without reading the number.
    phone_last4 = models.CharField(_("phone (last four digits)"), max_length=4, blank=True, editable=False)
    # A keyed hash of the client's address and browser: counts repeat reporters without storing who they are.
    client_hash = models.CharField(_("client fingerprint"), max_length=64, editable=False)
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.PROTECT, related_name="+", verbose_name=_("incident")
    )
    opened_incident = models.BooleanField(_("opened the incident"), default=False)
    created_at = models.DateTimeField(_("reported at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("citizen report")
        verbose_name_plural = _("citizen reports")
        constraints = [
            models.CheckConstraint(
                name="citizen_report_symptom_valid",
                condition=Q(symptom__in=Symptom.values),
                violation_error_message=_("Unknown symptom."),
            ),
            models.CheckConstraint(
                name="citizen_report_text_bounded",
                condition=LessThanOrEqual(Length("text"), 1000),
                violation_error_message=_("A report's text is at most 1000 characters."),
            ),
        ]
        indexes = [
            # The console's latest reports of the halls a user sees: newest first, cut at a page.
            models.Index(fields=["-created_at"], name="citizen_report_time_idx"),
            # A kiosk's reports (the admin's filter, and the incident's citizen reports by kiosk).
            models.Index(fields=["kiosk", "-created_at"], name="citizen_report_kiosk_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kiosk_id} {self.symptom} @ {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def fault_kind(self) -> str:
        return SYMPTOM_FAULT_KIND[Symptom(self.symptom)]

    @property
    def phone_masked(self) -> str:
        return f"*******{self.phone_last4}" if self.phone_last4 else ""
