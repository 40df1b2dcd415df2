r"""Indonesian phone numbers: normalise what people type to E.164, and mask numbers for logs.

OTP codes go out by WhatsApp or SMS, so only mobile numbers make sense: in Indonesia these start
with 8 after the country code (+62 8xx), followed by 8 to 11 more digits. Accepted spellings:
`08xx…`, `628xx…`, `+628xx…`, with optional spaces, dashes, dots or parentheses between digits.

Only ASCII digits are accepted (docs/security.md "Phone numbers"): Python's `\d` also matches
Arabic-Indic, Devanagari, fullwidth … digits, which would otherwise yield a second spelling of the
same number (and a second per-phone OTP limit). The number must be a valid Indonesian mobile
number by Google's libphonenumber metadata (`phonenumbers`), and the stored form is its E.164.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_SEPARATORS = re.compile(r"[ \-.()]")
_ASCII_DIGITS = re.compile(r"\+?[0-9]+")
_E164_ID_MOBILE = re.compile(r"\+628[0-9]{8,11}")
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)

# Longest accepted input before separators are removed: generous for "+62 812-3456-7890".
MAX_PHONE_INPUT_LENGTH = 32


class InvalidPhone(ValueError):
    """The input is not an Indonesian mobile number."""


def phone_normalize(raw: str) -> str:
    """Return the E.164 form (`+628…`) or raise InvalidPhone."""
    if not isinstance(raw, str) or len(raw) > MAX_PHONE_INPUT_LENGTH:
        raise InvalidPhone("not a valid Indonesian mobile number")
    if not raw.isascii():
        raise InvalidPhone("use the digits 0-9 (08…, 628… or +628…)")
    compact = _SEPARATORS.sub("", raw.strip())
    if not _ASCII_DIGITS.fullmatch(compact):
        raise InvalidPhone("not a valid Indonesian mobile number (use 08…, 628… or +628…)")
    if compact.startswith("+62"):
        candidate = compact
    elif compact.startswith("62"):
        candidate = "+" + compact
    elif compact.startswith("0"):
        candidate = "+62" + compact[1:]
    else:
        raise InvalidPhone("not a valid Indonesian mobile number (use 08…, 628… or +628…)")
    if not _E164_ID_MOBILE.fullmatch(candidate):
        raise InvalidPhone("not a valid Indonesian mobile number (use 08…, 628… or +628…)")
    try:
        number = phonenumbers.parse(candidate, "ID")
    except NumberParseException as exc:
        raise InvalidPhone("not a valid Indonesian mobile number (use 08…, 628… or +628…)") from exc
    if (
        number.country_code != 62
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) not in _MOBILE_TYPES
    ):
        raise InvalidPhone("not a valid Indonesian mobile number (use 08…, 628… or +628…)")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not _E164_ID_MOBILE.fullmatch(e164):
        raise InvalidPhone("not a valid Indonesian mobile number (use 08…, 628… or +628…)")
    return e164


def phone_mask(phone: str | None) -> str:
    """`+6281234567890` → `+62812*****890`: enough for ops to correlate, not enough to call."""
    if not phone:
        return "-"
    if len(phone) <= 8:
        return "*" * len(phone)
    return phone[:6] + "*" * (len(phone) - 9) + phone[-3:]
