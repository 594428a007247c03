"""Ready-made policies. Titles and descriptions are plain English; the Django side translates.

A preset has no column rules of its own (column names differ per dataset): the user designates
columns, usually by entity only (``{"patient": {"entity": "PERSON"}}``), and the preset's
entity rules supply the operator. :meth:`Preset.to_policy` merges those in.

HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i) — the 18 identifiers and how this preset covers them:

    | #   | identifier                                    | here                                   |
    |-----|-----------------------------------------------|----------------------------------------|
    | A   | names                                         | PERSON columns (designated) -> tag     |
    | B   | geographic subdivisions smaller than a state  | ADDRESS columns -> tag; a ZIP column   |
    |     | (street, city, county, ZIP, geocodes)         | can use mask keep_start=3 where the    |
    |     |                                               | 3-digit area has > 20,000 people       |
    | C   | dates (except year) related to the individual;| DATE -> year (times of day go too);    |
    |     | ages over 89                                  | AGE (>= 90) -> age90 ("90+")           |
    | D   | telephone numbers                             | PHONE -> tag (CN mobile/landline, NANP)|
    | E   | fax numbers                                   | PHONE (same number formats)            |
    | F   | email addresses                               | EMAIL -> tag                           |
    | G   | social security numbers                       | US_SSN -> tag                          |
    | H   | medical record numbers                        | MRN keyword pattern -> tag             |
    | I   | health plan beneficiary numbers               | HEALTH_PLAN keyword pattern -> tag     |
    | J   | account numbers                               | BANK_CARD (Luhn) + ACCOUNT keyword     |
    | K   | certificate/license numbers                   | LICENSE keyword pattern; ID_CARD,      |
    |     |                                               | PASSPORT                               |
    | L   | vehicle identifiers, serial numbers, plates   | LICENSE_PLATE; VIN keyword pattern     |
    | M   | device identifiers and serial numbers         | DEVICE_ID keyword pattern              |
    | N   | web URLs                                      | URL -> tag                             |
    | O   | IP addresses                                  | IP_ADDRESS -> tag                      |
    | P   | biometric identifiers (finger/voice prints)   | not applicable to text datasets        |
    | Q   | full-face photographs and comparable images   | not applicable to text datasets        |
    | R   | any other unique identifying number or code   | ID_CARD, PASSPORT, plus the site's own |
    |     |                                               | custom patterns                        |

Safe Harbor allows a re-identification code only if it is *not derived from* information about
the individual (164.514(c)); an HMAC pseudonym is derived from the identifier, so this preset
tags rather than pseudonymises. Years of dates are kept; for people over 89 the year of birth
would also have to go — designate such a column with the ``redact`` operator. Safe Harbor also
requires that the organisation has no actual knowledge that the rest identifies someone: free
text can name people in ways no pattern finds, so review a sample before release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .policy import Policy, PolicyError


def _variants(keyword: str) -> list[str]:
    """Spellings of an ASCII keyword: as given, lower, UPPER, Capitalised, Title, and Title with
    short words upper-cased ("Member ID"). Listing them beats a case-insensitive pattern, which
    disables the regex engine's fast first-character scan (about 4x slower per text)."""
    if not keyword.isascii():
        return [keyword]
    acronyms = " ".join(w.upper() if len(w) <= 3 else w.capitalize() for w in keyword.split(" "))
    spellings = [keyword, keyword.lower(), keyword.upper(), keyword.capitalize(), keyword.title()]
    return list(dict.fromkeys([*spellings, acronyms]))


def keyword_pattern(
    keywords: list[str],
    value: str = r"[A-Za-z0-9][A-Za-z0-9-]{3,19}",
    min_digits: int = 5,
) -> str:
    """Regex for an identifier that follows a keyword: ``MRN: 12345678``, ``病历号A1234567``.

    Only the value is the span (named group ``value``), so the keyword stays readable. The value
    must hold ``min_digits`` digits, which keeps words and years ("license 2024") out. An ASCII
    keyword must not follow a letter (the check sits after the keyword, where it has a fixed
    width and leaves the fast scan on).
    """
    alts = []
    for kw in sorted(keywords, key=len, reverse=True):
        for spelling in _variants(kw):
            esc = re.escape(spelling)
            alts.append(f"{esc}(?<![A-Za-z]{esc})" if spelling[0].isascii() else esc)
    return (
        rf"(?:{'|'.join(alts)})(?i:[ \t]*(?:#|no\.?|number|id|号码?)?[ \t]*[:：#.]?[ \t]*)"
        rf"(?P<value>(?=(?:[A-Za-z -]*[0-9]){{{min_digits}}}){value})(?![A-Za-z0-9])"
    )


MRN_PATTERN = keyword_pattern(
    ["MRN", "medical record", "病历号", "病案号", "住院号", "门诊号", "就诊卡号"]
)
HEALTH_PLAN_PATTERN = keyword_pattern(
    [
        "health plan beneficiary",
        "health plan",
        "member id",
        "beneficiary id",
        "beneficiary number",
        "医保卡号",
        "医保号",
        "社保卡号",
        "社保号",
    ]
)
ACCOUNT_PATTERN = keyword_pattern(
    ["account", "acct", "iban", "账号", "帐号", "账户", "帐户", "卡号"],
    r"[A-Za-z0-9]{2,}(?:[ -][0-9]{2,}){0,6}",
    min_digits=6,
)
LICENSE_PATTERN = keyword_pattern(
    [
        "license",
        "licence",
        "certificate",
        "DEA",
        "NPI",
        "执照号",
        "证书编号",
        "证书号",
        "执业证号",
        "驾驶证号",
    ]
)
VIN_PATTERN = keyword_pattern(
    ["VIN", "vehicle identification number", "车架号", "车辆识别代号", "车辆识别码"],
    r"[A-HJ-NPR-Z0-9]{17}",
)
DEVICE_PATTERN = keyword_pattern(
    ["serial number", "serial no", "serial", "S/N", "device id", "IMEI", "设备编号", "序列号"]
)


@dataclass(frozen=True)
class Preset:
    """A named policy; ``policy`` has no column rules (see the module docstring)."""

    name: str
    title: str
    description: str
    policy: Policy

    def to_policy(
        self,
        columns: Mapping[str, Any] | None = None,
        *,
        scan_columns: list[str] | None = None,
        custom_patterns: Mapping[str, Any] | None = None,
        min_score: float | None = None,
    ) -> Policy:
        """The preset with the dataset's designated columns (and extra custom patterns) merged
        in; raises :class:`PolicyError` if they are invalid."""
        data = self.policy.to_dict()
        data["columns"] = {**data["columns"], **(columns or {})}
        if scan_columns is not None:
            data["scan_columns"] = scan_columns
        if custom_patterns:
            data["custom_patterns"] = {**data["custom_patterns"], **custom_patterns}
        if min_score is not None:
            data["min_score"] = min_score
        return Policy.from_dict(data)


def _preset(name: str, title: str, description: str, policy: dict[str, Any]) -> Preset:
    return Preset(name, title, description, Policy.from_dict(policy))


_TAG = {"operator": "tag"}

HIPAA_SAFE_HARBOR = _preset(
    name="hipaa_safe_harbor",
    title="HIPAA Safe Harbor",
    description=(
        "Removes the 18 identifiers of 45 CFR 164.514(b)(2): phone and fax numbers, email "
        "addresses, SSNs, medical record, health plan, account, licence, vehicle and device "
        "numbers, URLs and IP addresses become tags; dates keep only the year; ages over 89 "
        "become 90+. Names and addresses are removed from the columns you designate."
    ),
    policy={
        "entities": {
            "PERSON": _TAG,
            "ADDRESS": _TAG,
            "DATE": {"operator": "year"},
            "AGE": {"operator": "age90"},
            "PHONE": _TAG,
            "EMAIL": _TAG,
            "US_SSN": _TAG,
            "MRN": _TAG,
            "HEALTH_PLAN": _TAG,
            "ACCOUNT": _TAG,
            "BANK_CARD": _TAG,
            "LICENSE": _TAG,
            "LICENSE_PLATE": _TAG,
            "VIN": _TAG,
            "DEVICE_ID": _TAG,
            "URL": _TAG,
            "IP_ADDRESS": _TAG,
            "ID_CARD": _TAG,
            "PASSPORT": _TAG,
        },
        "custom_patterns": {
            "MRN": MRN_PATTERN,
            "HEALTH_PLAN": HEALTH_PLAN_PATTERN,
            "ACCOUNT": ACCOUNT_PATTERN,
            "LICENSE": LICENSE_PATTERN,
            "VIN": VIN_PATTERN,
            "DEVICE_ID": DEVICE_PATTERN,
        },
        "min_score": 0.5,
    },
)

PIPL = _preset(
    name="pipl",
    title="China PIPL personal information",
    description=(
        "For the Personal Information Protection Law: resident ID and passport numbers become "
        "keyed pseudonyms (the same number gets the same token, so records still join); mobile "
        "and landline numbers, bank cards, email addresses and licence plates are partially "
        "masked; IP addresses are tagged. Names in the columns you designate are pseudonymised, "
        "addresses are masked after the district."
    ),
    policy={
        "entities": {
            "ID_CARD": {"operator": "pseudonym"},
            "PASSPORT": {"operator": "pseudonym"},
            "PHONE": {"operator": "mask"},
            "BANK_CARD": {"operator": "mask"},
            "EMAIL": {"operator": "mask"},
            "LICENSE_PLATE": {"operator": "mask"},
            "IP_ADDRESS": _TAG,
            "PERSON": {"operator": "pseudonym"},
            "ADDRESS": {"operator": "mask", "keep_start": 6, "keep_end": 0},
        },
        "min_score": 0.5,
    },
)

FINANCE = _preset(
    name="finance",
    title="Finance",
    description=(
        "For banking and payment data: card and account numbers keep the first six and last "
        "four digits, ID numbers and phones are masked, names are pseudonymised, and amount "
        "columns you designate are binned into ranges labelled in 万 (bins with fewer than 10 "
        "rows are merged with a neighbour)."
    ),
    policy={
        "entities": {
            "BANK_CARD": {"operator": "mask"},
            "ACCOUNT": {"operator": "mask", "keep_start": 0, "keep_end": 4},
            "ID_CARD": {"operator": "mask"},
            "PASSPORT": {"operator": "mask"},
            "PHONE": {"operator": "mask"},
            "EMAIL": {"operator": "mask"},
            "PERSON": {"operator": "pseudonym"},
            "ADDRESS": {"operator": "mask", "keep_start": 6, "keep_end": 0},
            "AMOUNT": {
                "operator": "bin",
                "edges": [0, 10000, 50000, 200000, 1000000],
                "style": "wan",
                "min_bin_size": 10,
            },
        },
        "custom_patterns": {"ACCOUNT": ACCOUNT_PATTERN},
        "min_score": 0.5,
    },
)

PRESETS: dict[str, Preset] = {p.name: p for p in (HIPAA_SAFE_HARBOR, PIPL, FINANCE)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise PolicyError(
            f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})"
        ) from None
