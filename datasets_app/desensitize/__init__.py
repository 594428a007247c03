"""PII detection and masking for dataset rows (Django-free: runs in workers and scripts).

from datasets_app.desensitize import Desensitizer, Policy, PRESETS

policy = PRESETS["pipl"].to_policy(columns={"name": {"entity": "PERSON"}})
d = Desensitizer(policy, hmac_key=key)
rows_out = [d.transform_row(r) for r in rows]
d.report()
"""

from .detectors import (
    ADDRESS,
    AGE,
    AMOUNT,
    BANK_CARD,
    COLUMN_ONLY_ENTITIES,
    DATE,
    DETECTABLE_ENTITIES,
    EMAIL,
    ID_CARD,
    IP_ADDRESS,
    LICENSE_PLATE,
    MRN,
    PASSPORT,
    PERSON,
    PHONE,
    URL,
    US_SSN,
    Analyzer,
    Finding,
    detect,
)
from .engine import Desensitizer, desensitize_rows
from .operators import (
    OPERATORS,
    PLACEHOLDER_RE,
    PROTECTED_RE,
    Binner,
    Pseudonymizer,
    is_protected_span,
    protected_spans,
)
from .policy import Policy, PolicyError
from .presets import PRESETS, Preset, get_preset

__all__ = [
    "ADDRESS",
    "AGE",
    "AMOUNT",
    "BANK_CARD",
    "COLUMN_ONLY_ENTITIES",
    "DATE",
    "DETECTABLE_ENTITIES",
    "EMAIL",
    "ID_CARD",
    "IP_ADDRESS",
    "LICENSE_PLATE",
    "MRN",
    "OPERATORS",
    "PASSPORT",
    "PERSON",
    "PHONE",
    "PLACEHOLDER_RE",
    "PRESETS",
    "PROTECTED_RE",
    "URL",
    "US_SSN",
    "Analyzer",
    "Binner",
    "Desensitizer",
    "Finding",
    "Policy",
    "PolicyError",
    "Preset",
    "Pseudonymizer",
    "desensitize_rows",
    "detect",
    "get_preset",
    "is_protected_span",
    "protected_spans",
]
