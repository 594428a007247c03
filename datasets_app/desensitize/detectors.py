"""Recognizers for personal data in free text, Chinese and English alike.

Modelled on Presidio's recognizer design (one recognizer per kind of identifier, a pattern that
finds candidates, a validator that rejects look-alikes, a confidence score, conflicts resolved
afterwards), but self-contained: no spaCy, no downloads, no NER model. Names and addresses are
therefore *not* found in free text; they are handled through designated columns (``PERSON`` and
``ADDRESS`` exist as entity names for those column rules).

Chinese text does not put spaces between words, and ``\\b`` does not separate a digit from a CJK
character (both are "word" characters), so every pattern uses explicit look-arounds such as
``(?<![0-9A-Za-z])`` instead. ``[0-9]`` is used rather than ``\\d``, which would also match
full-width and other Unicode digits that the validators do not understand.

Scores: checksum-validated identifiers score 0.95 or more; pattern-only ones score lower, and
the analyzer drops findings under its ``min_score``. Overlapping findings are resolved by score,
then by length: one span per region of text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import NamedTuple

# --- entity names -------------------------------------------------------------------------------

ID_CARD = "ID_CARD"
PHONE = "PHONE"
BANK_CARD = "BANK_CARD"
EMAIL = "EMAIL"
IP_ADDRESS = "IP_ADDRESS"
URL = "URL"
DATE = "DATE"
PASSPORT = "PASSPORT"
LICENSE_PLATE = "LICENSE_PLATE"
US_SSN = "US_SSN"
AGE = "AGE"
MRN = "MRN"  # no built-in pattern: institution formats differ, the caller passes a regex
PERSON = "PERSON"
ADDRESS = "ADDRESS"
AMOUNT = "AMOUNT"

#: Entities with a built-in recognizer for free text.
DETECTABLE_ENTITIES: frozenset[str] = frozenset(
    {ID_CARD, PHONE, BANK_CARD, EMAIL, IP_ADDRESS, URL, DATE, PASSPORT, LICENSE_PLATE, US_SSN, AGE}
)
#: Entities that only designated columns carry (no free-text recognizer).
COLUMN_ONLY_ENTITIES: frozenset[str] = frozenset({PERSON, ADDRESS, AMOUNT})

ENTITY_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*\Z")


class Finding(NamedTuple):
    """One detected span: ``text[start:end] == text_of_span``."""

    entity: str
    start: int
    end: int
    text: str
    score: float


# --- validators (pure functions, also used by the tests) ----------------------------------------

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def valid_date(year: int, month: int, day: int) -> bool:
    """A real calendar date (no datetime object: this runs for every candidate)."""
    if not 1 <= month <= 12 or day < 1:
        return False
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return day <= 29
    return day <= _DAYS[month - 1]


# GB/T 2260 province-level codes: the first two digits of a resident ID.
_PROVINCES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64"}
    | {"65", "71", "81", "82", "83", "91"}
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_char(first17: str) -> str:
    """GB 11643-1999 ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def _birth_ok(year: int, month: int, day: int) -> bool:
    if year < 1900 or not valid_date(year, month, day):
        return False
    return (year, month, day) <= date.today().timetuple()[:3]


def id18_shape_ok(number: str) -> bool:
    """Province code and birth date of an 18-character ID are plausible (checksum not checked)."""
    return (
        len(number) == 18
        and number[:2] in _PROVINCES
        and number[:17].isdigit()
        and _birth_ok(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    )


def valid_id18(number: str) -> bool:
    """18-character mainland resident ID: province, birth date, MOD 11-2 check character."""
    return id18_shape_ok(number) and id_check_char(number[:17]) == number[17].upper()


def valid_id15(number: str) -> bool:
    """Old 15-digit ID (before 1999): province and a 19YYMMDD birth date; no check digit."""
    return (
        len(number) == 15
        and number.isdigit()
        and number[:2] in _PROVINCES
        and _birth_ok(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    )


_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        total += _LUHN_DOUBLE[d] if i & 1 else d
    return total % 10 == 0


def valid_ssn(area: str, group: str, serial: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    # Numbers the SSA voided after they were printed in advertising.
    return f"{area}{group}{serial}" not in ("078051120", "219099999")


# --- recognizers ---------------------------------------------------------------------------------

_ANY_DIGIT = re.compile(r"[0-9]")
# Full-width digits and letters (typed in a Chinese IME's full-width mode) map one-to-one to
# ASCII, so detection runs on a translated copy and the offsets still fit the original.
_FULLWIDTH_RE = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_FULLWIDTH = {
    cp: cp - 0xFEE0
    for lo, hi in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
    for cp in range(lo, hi + 1)
}


class Recognizer:
    """Finds one or more entities. Subclasses set ``entities`` and implement ``find``.

    ``needs_digit``: skip texts without an ASCII digit. ``needs``: skip texts containing none of
    these substrings. Both are cheap pre-checks so that millions of rows pay for a regex pass
    only when a match is possible.
    """

    entities: frozenset[str] = frozenset()
    needs_digit: bool = True
    needs: tuple[str, ...] = ()

    def find(self, text: str, out: list[Finding]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def analyze(self, text: str) -> list[Finding]:
        """All raw findings of this recognizer (unresolved, unfiltered)."""
        out: list[Finding] = []
        self.find(text, out)
        return out


class DigitRunRecognizer(Recognizer):
    """Unbroken digit runs of 11-19 characters: resident IDs, bank cards, landlines.

    One pass serves the three entities: a run bounded by non-alphanumerics has one length and
    so one reading (an 18-digit run that is a valid ID is an ID even when it is Luhn-valid).
    """

    entities = frozenset({ID_CARD, BANK_CARD, PHONE})
    # The first digit is consumed before the look-behind so that re's fast first-character
    # scan applies (a leading look-behind disables it; ~2x faster on long texts).
    _RE = re.compile(r"[0-9](?<![0-9A-Za-z][0-9])[0-9]{10,18}[Xx]?(?![0-9A-Za-z])")

    def __init__(self, enabled: Iterable[str]) -> None:
        on = set(enabled)
        self._id = ID_CARD in on
        self._card = BANK_CARD in on
        self._phone = PHONE in on

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            run = m.group()
            s, e = m.span()
            n = len(run)
            if run[-1] in "Xx":
                if self._id and n == 18 and valid_id18(run):
                    out.append(Finding(ID_CARD, s, e, run, 0.99))
                continue
            if n == 18:
                if self._id and valid_id18(run):
                    out.append(Finding(ID_CARD, s, e, run, 0.99))
                # An ID-shaped number (province + birth date) whose check digit fails is a
                # mistyped ID or noise, and a valid ID is an ID: neither is called a card.
                elif self._card and run[0] != "0" and luhn_ok(run) and not id18_shape_ok(run):
                    out.append(Finding(BANK_CARD, s, e, run, 0.97 if run[:2] == "62" else 0.95))
            elif n >= 16:
                if self._card and run[0] != "0" and luhn_ok(run):
                    out.append(Finding(BANK_CARD, s, e, run, 0.97 if run[:2] == "62" else 0.95))
            elif n == 15:
                if self._id and valid_id15(run):
                    out.append(Finding(ID_CARD, s, e, run, 0.65))
            elif self._phone and run[0] == "0" and run[1] != "0":
                # Landline without separator: 3-digit area (010, 02x) + 8, or 4-digit + 7/8.
                three = (run[1] == "1" and run[2] == "0") or run[1] == "2"
                if (three and n == 11) or (not three and run[1] != "1" and n in (11, 12)):
                    out.append(Finding(PHONE, s, e, run, 0.55))


class GroupedCardRecognizer(Recognizer):
    """Bank cards written in groups of four: ``6222 0212 3456 7890 123``."""

    entities = frozenset({BANK_CARD})
    _RE = re.compile(
        r"[1-9](?<![0-9A-Za-z][1-9])[0-9]{3}([ -])[0-9]{4}(?:\1[0-9]{4}){2}(?:\1[0-9]{1,3})?"
        r"(?![0-9A-Za-z])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            raw = m.group()
            digits = raw.replace(m.group(1), "")
            if luhn_ok(digits) and not (len(digits) == 18 and id18_shape_ok(digits)):
                score = 0.97 if digits[:2] == "62" else 0.95
                out.append(Finding(BANK_CARD, m.start(), m.end(), raw, score))


class GroupedIdRecognizer(Recognizer):
    """Resident IDs written in 6-8-4 groups: ``110105 19900307 123X``."""

    entities = frozenset({ID_CARD})
    _RE = re.compile(
        r"[1-9](?<![0-9A-Za-z][1-9])[0-9]{5}([ -])[0-9]{8}\1[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            if valid_id18(m.group().replace(m.group(1), "")):
                out.append(Finding(ID_CARD, m.start(), m.end(), m.group(), 0.99))


class MobileRecognizer(Recognizer):
    """Mainland mobiles: 1[3-9]x + 8 digits, optional +86/86/0086, optional 3-4-4 grouping."""

    entities = frozenset({PHONE})
    _CORE = r"[3-9][0-9](?P<sep>[ -]?)[0-9]{4}(?P=sep)[0-9]{4}(?![0-9A-Za-z])"
    # Two regexes, each starting with a plain character class (fast first-character scan):
    # "+86 ..." and a number starting 1 / 86 / 0086 that does not continue a digit run.
    _PLUS = re.compile(rf"\+[ ]?86[ -]?1{_CORE}")
    _DIGIT = re.compile(
        rf"[018](?<![0-9A-Za-z+][018])(?:(?<=0)086[ -]?1|(?<=8)6[ -]?1|(?<=1)){_CORE}"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        if "+" in text:
            for m in self._PLUS.finditer(text):
                out.append(Finding(PHONE, m.start(), m.end(), m.group(), 0.85))
        for m in self._DIGIT.finditer(text):
            score = 0.8 if text[m.start()] == "1" else 0.85
            out.append(Finding(PHONE, m.start(), m.end(), m.group(), score))


class LandlineRecognizer(Recognizer):
    """Landlines with a separated area code: ``010-12345678``, ``(0755)1234567``, ``-123`` ext."""

    entities = frozenset({PHONE})
    _RE = re.compile(
        r"(?:\((?P<a1>0[1-9][0-9]{1,2})\)[ ]?|0(?<![0-9A-Za-z]0)(?P<a2>[1-9][0-9]{1,2})[- ])"
        r"(?P<num>[0-9]{7,8})(?:(?:-|转|ext\.?\s?|x|#)[0-9]{1,6})?(?![0-9A-Za-z])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            area = m.group("a1") or "0" + m.group("a2")
            n = len(m.group("num"))
            if len(area) == 3:
                ok = (area == "010" or area[1] == "2") and n == 8
            else:
                ok = area[1] not in "12"
            if ok:
                out.append(Finding(PHONE, m.start(), m.end(), m.group(), 0.75))


class NanpPhoneRecognizer(Recognizer):
    """North American numbers with separators (HIPAA phone/fax): ``(555) 234-5678``."""

    entities = frozenset({PHONE})
    _RE = re.compile(
        r"(?<![0-9A-Za-z+])(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\)[ ]?|[2-9][0-9]{2}[ .-])"
        r"[2-9][0-9]{2}[ .-][0-9]{4}(?![0-9A-Za-z]|[.-][0-9])"
    )

    _HINT = re.compile(r"[0-9]{3}[ .-][0-9]{4}")  # every form ends like this

    def find(self, text: str, out: list[Finding]) -> None:
        if self._HINT.search(text) is None:
            return
        for m in self._RE.finditer(text):
            out.append(Finding(PHONE, m.start(), m.end(), m.group(), 0.6))


class EmailRecognizer(Recognizer):
    entities = frozenset({EMAIL})
    needs_digit = False
    needs = ("@",)
    _RE = re.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@"
        r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            out.append(Finding(EMAIL, m.start(), m.end(), m.group(), 0.9))


class UrlRecognizer(Recognizer):
    """http(s)/ftp URLs and bare ``www.`` hosts; ASCII only, so CJK text ends the URL."""

    entities = frozenset({URL})
    needs_digit = False
    needs = ("://", "www.", "WWW.")
    # Literal-first (no case-insensitive group, no leading look-behind): the left boundary is
    # checked in Python, on the rare matches.
    _RE = re.compile(
        r"(?:https?|ftp|HTTPS?|FTP|Https?|Ftp)://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
        r"|(?:www|WWW)\.[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
    )
    _TRAIL = ".,;:!?'\""

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            prev = text[m.start() - 1] if m.start() else ""
            if prev.isascii() and (prev.isalnum() or prev == "."):
                continue
            url = m.group()
            # Sentence punctuation after a URL is not part of it; a ")" only when unbalanced.
            while url:
                last = url[-1]
                unbalanced = last in ")]" and url.count(last) > url.count("(["[last == "]"])
                if last not in self._TRAIL and not unbalanced:
                    break
                url = url[:-1]
            host = url.split("://", 1)[1] if "://" in url else url[4:]
            if any(c.isalnum() for c in host):
                out.append(Finding(URL, m.start(), m.start() + len(url), url, 0.9))


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"


class IPv4Recognizer(Recognizer):
    entities = frozenset({IP_ADDRESS})
    _RE = re.compile(
        rf"(?<![0-9A-Za-z.]){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?![0-9A-Za-z]|\.[0-9])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        if text.count(".") < 3:
            return
        for m in self._RE.finditer(text):
            out.append(Finding(IP_ADDRESS, m.start(), m.end(), m.group(), 0.8))


class IPv6Recognizer(Recognizer):
    """Hex-and-colon candidates, confirmed by :mod:`ipaddress` (rejects times like 12:30:45)."""

    entities = frozenset({IP_ADDRESS})
    needs_digit = False
    _RE = re.compile(
        r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
        r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4})(?:%[0-9A-Za-z]+)?(?![0-9A-Za-z:])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        if "::" not in text and text.count(":") < 6:
            return
        for m in self._RE.finditer(text):
            cand = m.group()
            if cand.count(":") < 2 or not any(c not in ":" for c in cand):
                continue
            try:
                ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            out.append(Finding(IP_ADDRESS, m.start(), m.end(), cand, 0.9))


_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_M = r"(?:0?[1-9]|1[0-2])"
_D = r"(?:0?[1-9]|[12][0-9]|3[01])"
_Y = r"(?:19|20)[0-9]{2}"
# Time of day attached to a date ("visit times"): 14:30, 14:30:05, T14:30, 2:30 PM, 14时30分,
# 下午3点半. Part of the DATE span so that date -> year also removes it.
_TIME = (
    r"(?:(?:T|,?[ \t]{0,2}(?:at[ \t])?)(?:(?:上午|下午|中午|晚上|早上|凌晨|傍晚)[ \t]?)?"
    r"(?:(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:[ \t]?[AaPp]\.?[Mm]\.?)?"
    r"|(?:[01]?[0-9]|2[0-3])[时点](?:[0-5]?[0-9]分|半)?(?:[0-5]?[0-9]秒)?))?"
)


def _month_alternation() -> str:
    # Spelled out in Title/lower/UPPER case rather than (?i:...): a case-insensitive branch
    # turns off re's fast first-character scan. Longest first so "March" beats "Mar".
    names = ["January", "February", "March", "April", "May", "June", "July", "August"]
    names += ["September", "Sept", "October", "November", "December"]
    names += [n[:3] for n in names if len(n) > 4]
    spellings = {v for n in names for v in (n, n.lower(), n.upper())}
    return "|".join(sorted(spellings, key=lambda v: (-len(v), v)))


_MON_ALT = _month_alternation()
_YEAR_HINT = re.compile(r"(?:19|20)[0-9]{2}")


class DateRecognizer(Recognizer):
    """Dates, optionally with a time of day. One regex per leading character class, so each
    keeps re's fast first-character scan; every form except ``3月5日`` holds a 19xx/20xx year,
    and a cheap search for one gates them."""

    entities = frozenset({DATE})
    # 2024-03-05, 2024/3/5, 2024.03.05, 2024年3月5日, 2024年3月
    _YMD = re.compile(
        r"[12](?<![0-9A-Za-z][12])[0-9]{3}(?:"
        rf"(?P<s>[-/.])(?P<m1>{_M})(?P=s)(?P<d1>{_D})(?![0-9]|\.[0-9])"
        rf"|[ ]?年[ ]?(?P<m2>{_M})[ ]?月(?:[ ]?(?P<d2>{_D})[ ]?[日号])?"
        rf"){_TIME}"
    )
    # 05/03/2024 or 03/05/2024: accepted if valid day-first or month-first
    _DMY = re.compile(
        r"[0-9](?<![0-9A-Za-z][0-9])[0-9]?(?P<s>[-/.])(?P<b>[0-9]{1,2})(?P=s)"
        rf"(?P<y>{_Y})(?![0-9]){_TIME}"
    )
    # March 5, 2024 / March 2024 / 5 March 2024
    _EN_MDY = re.compile(
        rf"(?P<mon>{_MON_ALT})\.?(?:[ ](?P<d>{_D})(?:st|nd|rd|th)?)?,?[ ]"
        rf"(?P<y>{_Y})(?![0-9]){_TIME}"
    )
    _EN_DMY = re.compile(
        r"[0-9](?<![0-9A-Za-z][0-9])[0-9]?(?:st|nd|rd|th)?[ ]"
        rf"(?P<mon>{_MON_ALT})\.?,?[ ](?P<y>{_Y})(?![0-9]){_TIME}"
    )
    # 3月5日 (no year; still a date element under HIPAA)
    _MD = re.compile(rf"[0-9](?<![0-9A-Za-z年][0-9])[0-9]?月(?P<d>{_D})[日号]{_TIME}")

    def find(self, text: str, out: list[Finding]) -> None:
        if _YEAR_HINT.search(text) is not None:
            for m in self._YMD.finditer(text):
                y = int(m.group()[:4])
                if m.group("m1"):
                    ok = valid_date(y, int(m.group("m1")), int(m.group("d1")))
                    score = 0.85
                else:
                    d2 = m.group("d2")
                    ok = valid_date(y, int(m.group("m2")), int(d2 or 1))
                    score = 0.85 if d2 else 0.7
                if ok and 1900 <= y <= 2099:
                    out.append(Finding(DATE, m.start(), m.end(), m.group(), score))
            for m in self._DMY.finditer(text):
                a, b, y = int(text[m.start() : m.start("s")]), int(m.group("b")), int(m.group("y"))
                if valid_date(y, b, a) or valid_date(y, a, b):
                    out.append(Finding(DATE, m.start(), m.end(), m.group(), 0.85))
            for m in self._EN_MDY.finditer(text):
                s = m.start()
                if s and text[s - 1].isascii() and text[s - 1].isalnum():
                    continue  # "summary 2024" is not "Mar 2024"
                d = m.group("d")
                month = _MONTHS[m.group("mon")[:3].lower()]
                if valid_date(int(m.group("y")), month, int(d or 1)):
                    out.append(Finding(DATE, s, m.end(), m.group(), 0.85 if d else 0.6))
            for m in self._EN_DMY.finditer(text):
                month = _MONTHS[m.group("mon")[:3].lower()]
                day = int(text[m.start() : m.start() + 2].rstrip(" snrt"))
                if valid_date(int(m.group("y")), month, day):
                    out.append(Finding(DATE, m.start(), m.end(), m.group(), 0.85))
        if "月" in text:
            for m in self._MD.finditer(text):
                month = int(text[m.start() : text.index("月", m.start())])
                if valid_date(2000, month, int(m.group("d"))):
                    out.append(Finding(DATE, m.start(), m.end(), m.group(), 0.7))


class PassportRecognizer(Recognizer):
    """Chinese passports (E/G + 8 digits, E + letter + 7) anywhere; other formats
    (1-2 letters + 7-8 digits) only within ~10 characters of a passport keyword."""

    entities = frozenset({PASSPORT})
    _RE = re.compile(r"[A-Z](?<![0-9A-Za-z][A-Z])[A-Z]?[0-9]{7,8}(?![0-9A-Za-z])")
    _CN = re.compile(r"[EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7}")
    _KW = re.compile(r"(?i:护照|passport)")

    def _near_keyword(self, text: str, s: int, e: int) -> bool:
        for k in self._KW.finditer(text, max(0, s - 18), s):
            if s - k.end() <= 10:
                return True
        return self._KW.search(text, e, e + 12) is not None

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            s, e = m.span()
            value = m.group()
            near = self._near_keyword(text, s, e)
            if self._CN.fullmatch(value):
                out.append(Finding(PASSPORT, s, e, value, 0.9 if near else 0.7))
            elif near:
                out.append(Finding(PASSPORT, s, e, value, 0.8))


class PlateRecognizer(Recognizer):
    """Chinese plates: province character, letter, 5 characters (6 for new-energy plates)."""

    entities = frozenset({LICENSE_PLATE})
    needs_digit = True
    _RE = re.compile(
        r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
        r"[A-HJ-NP-Z][·• ]?"
        r"(?P<tail>[DF][A-HJ-NP-Z0-9][0-9]{4}|[0-9]{5}[DF]"
        r"|[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳])(?![0-9A-Za-z])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            # Real plates carry at most two letters after the issuing-office letter.
            if sum(c.isdigit() for c in m.group("tail")) >= 3:
                out.append(Finding(LICENSE_PLATE, m.start(), m.end(), m.group(), 0.8))


class SsnRecognizer(Recognizer):
    """US social security numbers: ``123-45-6789`` (or spaced); 9 bare digits only after an
    SSN keyword. Area/group/serial rules reject impossible numbers."""

    entities = frozenset({US_SSN})
    _RE = re.compile(
        r"[0-9](?<![0-9A-Za-z][0-9])[0-9]{2}(?P<sep>[- ])[0-9]{2}(?P=sep)[0-9]{4}(?![0-9A-Za-z])"
    )
    _KW_RE = re.compile(
        r"(?:SSN|ssn|Ssn|Social Security|social security|SOCIAL SECURITY)"
        r"(?:[ ](?:[Nn]umber|NUMBER|[Nn]o\.?|NO\.?))?[\s:#.]{0,3}(?P<v>[0-9]{9})(?![0-9A-Za-z])"
    )

    def find(self, text: str, out: list[Finding]) -> None:
        for m in self._RE.finditer(text):
            v = m.group()
            if valid_ssn(v[:3], v[4:6], v[7:]):
                out.append(Finding(US_SSN, m.start(), m.end(), v, 0.85 if v[3] == "-" else 0.6))
        for m in self._KW_RE.finditer(text):
            if m.start() and text[m.start() - 1].isascii() and text[m.start() - 1].isalpha():
                continue
            v = m.group("v")
            if valid_ssn(v[:3], v[3:5], v[5:]):
                out.append(Finding(US_SSN, m.start("v"), m.end("v"), v, 0.9))


class AgeRecognizer(Recognizer):
    """Ages stated as ages ("92岁", "age 93", "93-year-old", "91 y/o", "年龄：95"); only those
    of at least ``min_age`` (HIPAA: over 89). The span is the number only, so ``age90`` gives
    "90+岁" / "age 90+"."""

    entities = frozenset({AGE})
    needs = ("岁", "年龄", "age", "Age", "AGE", "year", "Year", "yr", "y/o", "yo", "Y/O", "YO")
    _NUM_FIRST = re.compile(
        r"[0-9](?<![0-9.][0-9])[0-9]{1,2}(?![0-9])"
        r"(?:[ ]?(?:周岁|岁)|[- ](?:years?|yrs?|Years?)[- ](?:old|Old)"
        r"|[ ]?(?:y/?o|Y/?O)(?![A-Za-z]))"
    )
    _KW_FIRST = re.compile(
        r"(?:aged|Aged|AGED|age|Age|AGE)[ ]?(?:[:：]|is|of)?[ ]?(?P<n>[0-9]{2,3})(?![0-9])"
        r"|年龄[ ]?[:：]?[ ]?(?P<m>[0-9]{2,3})(?![0-9])"
    )

    def __init__(self, min_age: int = 90, max_age: int = 130) -> None:
        self.min_age = min_age
        self.max_age = max_age

    def find(self, text: str, out: list[Finding]) -> None:
        lo, hi = self.min_age, self.max_age
        for m in self._NUM_FIRST.finditer(text):
            s = m.start()
            e = s + (3 if text[s + 2].isdigit() else 2)
            if lo <= int(text[s:e]) <= hi:
                out.append(Finding(AGE, s, e, text[s:e], 0.85))
        for m in self._KW_FIRST.finditer(text):
            s = m.start()
            if s and text[s - 1].isascii() and text[s - 1].isalpha():
                continue  # "page 93", "stage 95"
            g = "n" if m.group("n") else "m"
            if lo <= int(m.group(g)) <= hi:
                out.append(Finding(AGE, m.start(g), m.end(g), m.group(g), 0.85))


class PatternRecognizer(Recognizer):
    """A caller-supplied regex (MRN, institution ids, ...). If it has a named group ``value``,
    only that group is the span (so ``MRN[:：]?(?P<value>\\d{8})`` keeps the keyword)."""

    needs_digit = False

    def __init__(self, entity: str, pattern: str | re.Pattern[str], score: float = 0.9) -> None:
        self.entity = entity
        self.entities = frozenset({entity})
        self.regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        self.score = score
        self._group = "value" if "value" in self.regex.groupindex else 0

    def find(self, text: str, out: list[Finding]) -> None:
        g = self._group
        for m in self.regex.finditer(text):
            s, e = m.span(g)
            if e > s:
                out.append(Finding(self.entity, s, e, text[s:e], self.score))


# --- analyzer ------------------------------------------------------------------------------------


def _priority(f: Finding) -> tuple[float, int, int]:
    return (-f.score, f.start - f.end, f.start)


def _resolve_cluster(cluster: list[Finding]) -> list[Finding]:
    if len(cluster) == 1:
        return cluster
    cluster.sort(key=_priority)
    kept: list[Finding] = []
    for f in cluster:
        if all(f.end <= k.start or k.end <= f.start for k in kept):
            kept.append(f)
    kept.sort(key=lambda f: f.start)
    return kept


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """Keep one finding per region: higher score first, then the longer span; sorted by start.

    Findings are first split into clusters of mutually overlapping spans (one sort), so a long
    document with thousands of findings costs O(n log n), not O(n²).
    """
    if len(findings) < 2:
        return findings
    findings.sort(key=lambda f: (f.start, -f.end))
    out: list[Finding] = []
    cluster = [findings[0]]
    cluster_end = findings[0].end
    for f in findings[1:]:
        if f.start < cluster_end:
            cluster.append(f)
            cluster_end = max(cluster_end, f.end)
        else:
            out += _resolve_cluster(cluster)
            cluster = [f]
            cluster_end = f.end
    out += _resolve_cluster(cluster)
    return out


CustomPatterns = Mapping[str, "str | re.Pattern[str] | tuple[str | re.Pattern[str], float]"]


def build_recognizers(
    entities: Iterable[str] | None = None,
    custom_patterns: CustomPatterns | None = None,
    *,
    min_age: int = 90,
) -> list[Recognizer]:
    """Recognizers for ``entities`` (None = every built-in one) plus one per custom pattern.

    ``custom_patterns`` maps an entity name to a regex, or to ``(regex, score)``.
    """
    want = set(DETECTABLE_ENTITIES if entities is None else entities)
    recs: list[Recognizer] = []
    if want & {ID_CARD, BANK_CARD, PHONE}:
        recs.append(DigitRunRecognizer(want))
    if ID_CARD in want:
        recs.append(GroupedIdRecognizer())
    if BANK_CARD in want:
        recs.append(GroupedCardRecognizer())
    if PHONE in want:
        recs += [MobileRecognizer(), LandlineRecognizer(), NanpPhoneRecognizer()]
    if EMAIL in want:
        recs.append(EmailRecognizer())
    if URL in want:
        recs.append(UrlRecognizer())
    if IP_ADDRESS in want:
        recs += [IPv4Recognizer(), IPv6Recognizer()]
    if DATE in want:
        recs.append(DateRecognizer())
    if PASSPORT in want:
        recs.append(PassportRecognizer())
    if LICENSE_PLATE in want:
        recs.append(PlateRecognizer())
    if US_SSN in want:
        recs.append(SsnRecognizer())
    if AGE in want:
        recs.append(AgeRecognizer(min_age=min_age))
    for name, spec in (custom_patterns or {}).items():
        pattern, score = spec if isinstance(spec, tuple) else (spec, 0.9)
        recs.append(PatternRecognizer(name, pattern, score))
    return recs


class Analyzer:
    """Runs recognizers over a text, drops findings under ``min_score``, resolves overlaps.

    Build it once (regexes compile once) and call :meth:`analyze` per string.
    """

    def __init__(
        self,
        entities: Iterable[str] | None = None,
        custom_patterns: CustomPatterns | None = None,
        min_score: float = 0.5,
        *,
        recognizers: list[Recognizer] | None = None,
    ) -> None:
        self.recognizers = (
            recognizers if recognizers is not None else build_recognizers(entities, custom_patterns)
        )
        self.min_score = min_score
        self._digit = [r for r in self.recognizers if r.needs_digit and not r.needs]
        self._other = [r for r in self.recognizers if not (r.needs_digit and not r.needs)]

    def analyze(self, text: str) -> list[Finding]:
        if _FULLWIDTH_RE.search(text) is None:
            return self._analyze(text)
        return [
            f._replace(text=text[f.start : f.end])
            for f in self._analyze(text.translate(_FULLWIDTH))
        ]

    def _analyze(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        has_digit: bool | None = None
        if self._digit:
            has_digit = _ANY_DIGIT.search(text) is not None
            if has_digit:
                for rec in self._digit:
                    rec.find(text, out)
        for rec in self._other:
            if rec.needs and not any(n in text for n in rec.needs):
                continue
            if rec.needs_digit:
                if has_digit is None:
                    has_digit = _ANY_DIGIT.search(text) is not None
                if not has_digit:
                    continue
            rec.find(text, out)
        if not out:
            return out
        ms = self.min_score
        return resolve_overlaps([f for f in out if f.score >= ms])


_DEFAULT_ANALYZER: Analyzer | None = None


def detect(
    text: str,
    entities: Iterable[str] | None = None,
    custom_patterns: CustomPatterns | None = None,
    min_score: float = 0.5,
) -> list[Finding]:
    """One-off convenience; build an :class:`Analyzer` for repeated use."""
    global _DEFAULT_ANALYZER
    if entities is None and not custom_patterns and min_score == 0.5:
        if _DEFAULT_ANALYZER is None:
            _DEFAULT_ANALYZER = Analyzer()
        return _DEFAULT_ANALYZER.analyze(text)
    return Analyzer(entities, custom_patterns, min_score).analyze(text)
