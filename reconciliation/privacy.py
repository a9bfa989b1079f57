"""Payer personal data never stored or logged in clear.

payer_ref is meant to be an application or receipt number, but kiosks in the field sometimes put a citizen's ID
number there. Anything that looks like a mainland resident ID number is replaced by a masked form plus a keyed
hash: staff still find the payment by typing the full number (it is hashed the same way), and nobody reading the
database or a log learns the number."""

import hashlib
import hmac
import re

from django.conf import settings

# 18-digit resident ID (last character may be X) or the old 15-digit form.
_ID_NUMBER = re.compile(r"^(\d{17}[\dXx]|\d{15})$")
PROTECTED_PREFIX = "pid:"


def _key() -> bytes:
    return settings.KIOSKOPS["PAYER_HASH_KEY"].encode()


def looks_like_id_number(value: str) -> bool:
    return bool(_ID_NUMBER.match(value))


def protect_payer_ref(value: str) -> str:
    """The form of a payer reference that may be stored: unchanged, or masked and hashed if it is an ID number."""
    value = value.strip()
    if not looks_like_id_number(value):
        return value
    value = value.upper()
    digest = hmac.new(_key(), value.encode(), hashlib.sha256).hexdigest()[:20]
    return f"{PROTECTED_PREFIX}{value[:3]}{'*' * (len(value) - 7)}{value[-4:]}#{digest}"


def display_payer_ref(stored: str) -> str:
    """What a person sees: the masked number for a protected reference, else the reference itself."""
    if stored.startswith(PROTECTED_PREFIX):
        return stored[len(PROTECTED_PREFIX) :].split("#", 1)[0]
    return stored
