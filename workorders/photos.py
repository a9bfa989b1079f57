"""Photos from the technician's phone: checked to be a real image, re-encoded as JPEG without EXIF (so no GPS
location or phone serial is kept), and bounded in size. The phone resizes before upload; this is the guarantee."""

import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
LONG_SIDE = 1600
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}


@dataclass
class CleanPhoto:
    content: ContentFile
    width: int
    height: int
    size_bytes: int


def clean(upload) -> CleanPhoto:
    """The upload as a clean JPEG at most LONG_SIDE pixels on its long side, or ValidationError saying why not."""
    size = getattr(upload, "size", None)
    if size is None or size <= 0:
        raise ValidationError({"file": _("The photo is empty.")})
    if size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            {"file": _("The photo is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)}}
        )
    data = upload.read()
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            width, height = probe.size
        if kind not in ACCEPTED_FORMATS:
            raise ValidationError({"file": _("Send a JPEG, PNG or WebP photo.")})
        if width * height > MAX_PIXELS:
            raise ValidationError({"file": _("The photo has too many pixels.")})
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            # Turn the pixels the way the camera held them, since the orientation tag goes with the EXIF.
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
            image.thumbnail((LONG_SIDE, LONG_SIDE))
            out = io.BytesIO()
            # No exif= argument: Pillow writes no EXIF at all.
            image.save(out, format="JPEG", quality=82, optimize=True)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValidationError({"file": _("This file is not a photo we can read.")}) from error
    payload = out.getvalue()
    return CleanPhoto(ContentFile(payload, name="photo.jpg"), image.width, image.height, len(payload))


def clean_signature(data: bytes) -> ContentFile:
    """A signature drawn on the phone: a PNG of sane size, re-encoded."""
    if not data:
        raise ValidationError({"signature": _("The signature is empty.")})
    if len(data) > 300 * 1024:
        raise ValidationError({"signature": _("The signature image is too large.")})
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.width * image.height > 4_000_000:
                raise ValidationError({"signature": _("The signature must be a PNG image.")})
            image.load()
            out = io.BytesIO()
            image.save(out, format="PNG", optimize=True)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValidationError({"signature": _("The signature must be a PNG image.")}) from error
    return ContentFile(out.getvalue(), name="signature.png")
