"""Citizens' phone numbers at rest: Fernet (AES-128-CBC with an HMAC) under a key derived from SECRET_KEY.

SECRET_KEY_FALLBACKS keep decrypting numbers stored under an earlier key after a rotation; new numbers are
encrypted under the current one. A number that no key opens reads as empty (it is never shown, never an error)."""

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

SALT = "kioskops.guidance.phone"


def _fernet(secret: str) -> Fernet:
    digest = salted_hmac(SALT, "fernet-key", secret=secret, algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    return MultiFernet([_fernet(settings.SECRET_KEY), *(_fernet(s) for s in settings.SECRET_KEY_FALLBACKS)])


def encrypt(value: str) -> str:
    return _keys().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        return ""


def fingerprint(*parts: str) -> str:
    """A keyed SHA-256 of the client's address and browser: the same client gives the same hash, and the hash
    gives neither back."""
    key = hashlib.sha256(f"{SALT}.client:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, "\x1f".join(parts).encode("utf-8", "replace"), hashlib.sha256).hexdigest()
