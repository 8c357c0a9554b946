"""Redaction of personal details (e-mail addresses, phone numbers, IBANs, card numbers)
from free text, before it is stored or quoted."""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

# Local formats of these countries are recognised besides the caller's region; numbers
# written internationally (+CC or 00CC) are recognised whatever the region.
_PHONE_REGIONS = ("NL", "BE", "DE", "GB")

_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")

# A card number is written compact or in groups of four (Amex/Diners: 4-6-5 / 4-6-4) with
# one consistent separator. Grouping rules keep runs of dates and numbers from matching.
_CARD = re.compile(
    r"(?<![\w.,/+-])"
    r"(?:\d{13,19}"
    r"|\d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"
    r"|\d{4}([ -])\d{6}\2\d{4,5})"
    r"(?![\w/]|[.,-]\d)"
)

# Where an IBAN may start: a country code and two check digits, not inside a word.
_IBAN_START = re.compile(r"(?<![\w-])([A-Za-z]{2})(\d{2})")
_IBAN_SEPARATORS = " -\u00a0"

# Total IBAN length by country (SWIFT IBAN registry); unknown countries are not IBANs.
_IBAN_LENGTH = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_spans(text: str) -> list[tuple[int, int]]:
    """Spans of mod-97-valid IBANs, compact or grouped with spaces or dashes."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (m := _IBAN_START.search(text, pos)) is not None:
        country = m.group(1).upper()
        length = _IBAN_LENGTH.get(country)
        pos = m.start() + 1
        if length is None or not 2 <= int(m.group(2)) <= 98:
            continue
        # Collect exactly the country's length of characters, allowing single separators.
        chars = [country, m.group(2)]
        i, need = m.end(), length - 4
        while need and i < len(text):
            ch = text[i]
            if ch.isascii() and ch.isalnum():
                chars.append(ch.upper())
                need -= 1
                i += 1
            elif ch in _IBAN_SEPARATORS and i + 1 < len(text) and text[i + 1].isalnum():
                i += 1
            else:
                break
        if need or (i < len(text) and text[i].isalnum()):
            continue
        if _iban_ok("".join(chars)):
            spans.append((m.start(), i))
            pos = i
    return spans


def _card_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        # Major industry identifiers 2-6 are the payment networks (Visa, Mastercard, Amex,
        # Discover, Maestro, UnionPay...); excluding the rest spares 00-prefixed phone
        # numbers and most barcodes, which can pass Luhn by chance.
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits):
            spans.append(m.span())
    return spans


def _phone_spans(text: str, region: str) -> list[tuple[int, int]]:
    spans = []
    for r in dict.fromkeys((region.upper(), *_PHONE_REGIONS)):
        # VALID: the number must exist in the numbering plan, which rules out dates,
        # prices and plain order numbers that merely look numeric.
        for m in phonenumbers.PhoneNumberMatcher(text, r, leniency=phonenumbers.Leniency.VALID):
            spans.append((m.start, m.end))
    return spans


def _replace(text: str, spans: Iterable[tuple[int, int]], label: str) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + label + text[end:]
    return text


def redact(text: str, *, region: str = "NL") -> str:
    """Replace e-mail addresses, IBANs, payment card numbers and phone numbers by labels.

    Detection is checksum- or numbering-plan-based (mod-97, Luhn, libphonenumber) so order
    numbers, dates, prices, versions and reference codes are left alone. Names and postal
    addresses are not detected. Idempotent: the labels contain no digits.
    """
    if not text:
        return text
    text = _EMAIL.sub("[email]", text)
    # Most specific first: IBANs and cards contain digit runs a phone matcher might claim.
    text = _replace(text, _iban_spans(text), "[iban]")
    text = _replace(text, _card_spans(text), "[card]")
    return _replace(text, _phone_spans(text, region), "[phone]")
