"""Citizen guidance's writes: a citizen's report from a kiosk's sticker, and a region's guidance settings."""

import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import Region
from fleet.models import Kiosk
from guidance import protect
from guidance.models import SYMPTOM_FAULT_KIND, CitizenReport, RegionGuidance, Symptom
from incidents import services as incident_services

TEXT_MAX = 1000
# A mainland mobile (11 digits from 1[3-9]) or a landline with its area code (0xx-xxxxxxxx).
PHONE_RE = re.compile(r"\A(?:1[3-9]\d{9}|0\d{2,3}\d{7,8})\Z")
# Markup in a report: someone testing the page for script injection, not a citizen describing a kiosk.
MARKUP_RE = re.compile(r"<\s*/?\s*[a-zA-Z!?]")


def clean_text(value: str, *, field: str) -> str:
    """Text a citizen typed, refused (ValidationError keyed by ``field``) when it holds what no person types: NUL
    and other control characters, lone surrogates or undecodable bytes (U+FFFD), or markup."""
    value = value or ""
    for char in value:
        if char in "\n\r\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cs", "Co") or char == "\ufffd":
            raise ValidationError({field: _("The text holds characters that cannot be read. Please type it again.")})
    if MARKUP_RE.search(value):
        raise ValidationError({field: _("Please describe the problem in words, without web-page code.")})
    return unicodedata.normalize("NFC", value).strip()


def clean_phone(value: str) -> str:
    digits = re.sub(r"[\s\-()]", "", value or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    if digits and not PHONE_RE.match(digits):
        raise ValidationError({"phone": _("Enter a mobile number of 11 digits, or a landline with its area code.")})
    return digits


@transaction.atomic
def citizen_report_submit(
    *, kiosk: Kiosk, symptom: str, text: str = "", phone: str = "", client: tuple[str, ...] = ()
) -> CitizenReport:
    """Record a citizen's report of a kiosk and open or join the kiosk's incident of the matching fault kind
    (incidents.services.incident_report_by_citizen). The phone number is stored encrypted and never put on the
    incident. Bad input raises ValidationError keyed by the field and stores nothing."""
    if symptom not in Symptom.values:
        raise ValidationError({"symptom": _("Choose what went wrong.")})
    text = clean_text(text, field="text")
    if len(text) > TEXT_MAX:
        raise ValidationError({"text": _("Please keep it under %(max)d characters.") % {"max": TEXT_MAX}})
    if symptom == Symptom.OTHER and not text:
        raise ValidationError({"text": _("Please say in a few words what went wrong.")})
    phone = clean_phone(phone)
    if kiosk.status == Kiosk.Status.RETIRED:
        raise ValidationError(_("This kiosk is no longer in service."))
    with translation.override(settings.LANGUAGE_CODE):  # the incident reads in the console's language
        label = str(Symptom(symptom).label)
        described = f"{label}：{text}" if text else label
        incident, created = incident_services.incident_report_by_citizen(
            kiosk=kiosk, fault_kind=SYMPTOM_FAULT_KIND[Symptom(symptom)], symptom=described
        )
    return CitizenReport.objects.create(
        kiosk=kiosk,
        symptom=symptom,
        text=text,
        phone_encrypted=protect.encrypt(phone),
        phone_last4=phone[-4:],
        client_hash=protect.fingerprint(*client),
        incident=incident,
        opened_incident=created,
    )


@transaction.atomic
def region_guidance_set(
    *, region: Region, platform_name: str, platform_url: str, hotline: str = "", fees: list[str] = ()
) -> RegionGuidance:
    """Set a region's guidance (the demo's seed; people edit it in the admin). Idempotent."""
    guidance, _created = RegionGuidance.objects.update_or_create(
        region=region,
        defaults={
            "online_platform_name": platform_name,
            "online_platform_url": platform_url,
            "hotline": hotline,
            "fees": "\n".join(fees),
        },
    )
    return guidance


@transaction.atomic
def notice_posted(*, site, actor, serial: str = "") -> int:
    """Someone posted the hall's notice (or one kiosk's) at the kiosk area: each active incident of its
    out-of-service kiosks records that citizens were guided. Returns how many incidents recorded it."""
    kiosks = Kiosk.objects.filter(site=site, status__in=(Kiosk.Status.OFFLINE, Kiosk.Status.MAINTENANCE))
    if serial:
        kiosks = kiosks.filter(serial=serial)
    with translation.override(settings.LANGUAGE_CODE):
        return incident_services.incidents_record_citizens_guided(
            kiosk_ids=list(kiosks.values_list("pk", flat=True)),
            actor=actor,
            measure=_("Notice posted at the kiosk area"),
            result=_("Citizens guided to the other kiosks, the counter and the online platform"),
        )
