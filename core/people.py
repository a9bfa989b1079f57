"""How a person is named on screen: Chinese names family name first, with no space (李强, not 强 李)."""

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def person_name(user) -> str:
    """The user's name as colleagues write it: 李强 for a Chinese name, Anna Schmidt otherwise, else the username."""
    if user is None:
        return ""
    first, last = (user.first_name or "").strip(), (user.last_name or "").strip()
    if not first and not last:
        return user.get_username()
    if _HAN.search(first + last):
        return f"{last}{first}"
    return f"{first} {last}".strip()
