"""Operators: what happens to a detected span or a designated column value.

``mask``       partial mask that keeps an entity-dependent prefix/suffix (``138****5678``)
``tag``        the entity name in brackets (``[ID_CARD]``)
``pseudonym``  keyed HMAC-SHA256 token, stable across the dataset (``[ID_CARD:9f3a2c1d7b]``)
``redact``     empty string
``year``       a date generalised to its year (``2024``)
``bin``        a number replaced by the label of its range (``1-5万``), see :class:`Binner`
``age90``      ages over 89 become ``90+`` (HIPAA Safe Harbor)
``keep``       unchanged

Placeholders produced here (tags, pseudonyms, and masked values containing ``**``) match
:data:`PROTECTED_RE`; an augmentation step calls :func:`protected_spans` so that it never
rewrites or splits them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from .detectors import (
    ADDRESS,
    BANK_CARD,
    DATE,
    EMAIL,
    ID_CARD,
    IP_ADDRESS,
    LICENSE_PLATE,
    PASSPORT,
    PERSON,
    PHONE,
    US_SSN,
)

OPERATORS: tuple[str, ...] = ("mask", "tag", "pseudonym", "redact", "year", "bin", "age90", "keep")
#: Parameters each operator accepts (anything else is a policy error).
OPERATOR_PARAMS: dict[str, frozenset[str]] = {
    "mask": frozenset({"keep_start", "keep_end", "char"}),
    "bin": frozenset({"edges", "labels", "style", "min_bin_size"}),
}

# --- placeholders --------------------------------------------------------------------------------

#: Tags and pseudonyms: ``[ID_CARD]``, ``[PHONE:0a1b2c3d4e]``.
PLACEHOLDER_RE = re.compile(r"\[[A-Z][A-Z0-9_]*(?::[0-9a-f]{10})?\]")
#: Masked values (default ``*`` mask character): ``138****5678``, ``z***@example.com``, ``张**``.
MASKED_RE = re.compile(r"[0-9A-Za-z_.%+@-]*\*{2,}[0-9A-Za-z_.%+@*-]*")
PROTECTED_RE = re.compile(f"{PLACEHOLDER_RE.pattern}|{MASKED_RE.pattern}")


def protected_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every placeholder or masked value in ``text``, in order."""
    return [m.span() for m in PROTECTED_RE.finditer(text)]


def is_protected_span(text: str) -> bool:
    """True if ``text`` (a word, a span an augmenter wants to alter) contains a placeholder or
    a masked value, i.e. must be left exactly as it is."""
    return PROTECTED_RE.search(text) is not None


# --- normalisation -------------------------------------------------------------------------------

_COMPACT = frozenset({ID_CARD, BANK_CARD, US_SSN, PASSPORT, LICENSE_PLATE, PHONE})
_SEP_RE = re.compile(r"[\s\-·•.()（）/]")
_MOBILE_CC_RE = re.compile(r"(?:\+86|0086|86)(?=1[3-9][0-9]{9}\Z)")


def normalise(entity: str, value: str) -> str:
    """Canonical form so that spellings of one value share a pseudonym:
    ``110105 19900307 123x`` == ``110105199003071239X``, ``+86 138-1234-5678`` == ``13812345678``.
    """
    value = unicodedata.normalize("NFKC", value)
    if entity in _COMPACT:
        v = _SEP_RE.sub("", value).upper()
        if entity == PHONE:
            v = _MOBILE_CC_RE.sub("", v, count=1)
        return v
    if entity == EMAIL:
        return value.strip().lower()
    if entity == IP_ADDRESS:
        try:
            return ipaddress.ip_address(value.strip().split("%")[0]).compressed
        except ValueError:
            return value.strip().lower()
    return " ".join(value.split()).casefold()


# --- mask ----------------------------------------------------------------------------------------

#: Default (keep_start, keep_end) per entity; others keep nothing.
MASK_KEEP: dict[str, tuple[int, int]] = {
    ID_CARD: (6, 4),
    BANK_CARD: (6, 4),
    PHONE: (3, 4),
    EMAIL: (1, 0),
    PASSPORT: (1, 2),
    LICENSE_PLATE: (2, 0),
    US_SSN: (0, 4),
    PERSON: (1, 0),
    ADDRESS: (6, 0),
    DATE: (4, 0),
}
_CC_PREFIX_RE = re.compile(r"(?:\+\s?86|0086|86)[ -]?(?=1[3-9][0-9])")
_LANDLINE_RE = re.compile(
    r"\(?(0(?:10|2[0-9]|[3-9][0-9]{2}))\)?[- ]?([0-9]{7,8})(?:(?:-|转|ext\.?\s?|x|#)([0-9]{1,6}))?"
)
_NON_DIGIT_RE = re.compile(r"[^0-9]")


def _mask_core(core: str, keep_start: int, keep_end: int, char: str) -> str:
    n = len(core)
    if keep_start + keep_end >= n:  # too short to keep that much: keep less, never all
        keep_start, keep_end = min(keep_start, n // 3), min(keep_end, n // 3)
        if keep_start + keep_end >= n:
            keep_start = keep_end = 0
    # At least two mask characters, so every masked value contains "**" (see MASKED_RE).
    return core[:keep_start] + char * max(2, n - keep_start - keep_end) + core[n - keep_end :]


def _mask_phone(value: str, char: str) -> str:
    v = value.strip()
    prefix = ""
    m = _CC_PREFIX_RE.match(v)
    if m:
        prefix, v = "+86 ", v[m.end() :]
    digits = _NON_DIGIT_RE.sub("", v)
    if len(digits) == 11 and digits[0] == "1":
        return f"{prefix}{digits[:3]}{char * 4}{digits[7:]}"
    lm = _LANDLINE_RE.fullmatch(v)
    if lm:
        area, num, ext = lm.groups()
        out = f"{area}-{char * (len(num) - 4)}{num[-4:]}"
        return f"{out}-{char * max(2, len(ext))}" if ext else out
    return prefix + _mask_core(digits or v, 3, 4, char)


def mask(
    value: str,
    entity: str = "",
    *,
    keep_start: int | None = None,
    keep_end: int | None = None,
    char: str = "*",
) -> str:
    """Partial mask. Defaults by entity: ID ``110105********002X`` (6 + last 4), mobile
    ``138****5678``, landline ``010-****5678``, card first 6 + last 4, email
    ``z***@example.com``, name ``张**``. Explicit keep_start/keep_end apply to the normalised
    value (separators removed for ids, cards and phones)."""
    if entity in _COMPACT or entity == EMAIL:
        value = unicodedata.normalize("NFKC", value)  # full-width digits -> ASCII
    if entity == EMAIL and "@" in value:
        local, domain = value.rsplit("@", 1)
        ks = 1 if keep_start is None else keep_start
        ke = 0 if keep_end is None else keep_end
        if ks + ke >= len(local):
            ks, ke = 0, 0
        return f"{local[:ks]}{char * 3}{local[len(local) - ke :]}@{domain}"
    if entity == PHONE and keep_start is None and keep_end is None:
        return _mask_phone(value, char)
    ks_default, ke_default = MASK_KEEP.get(entity, (0, 0))
    ks = ks_default if keep_start is None else keep_start
    ke = ke_default if keep_end is None else keep_end
    core = normalise(entity, value) if entity in _COMPACT else value
    return _mask_core(core, ks, ke, char)


# --- tag / pseudonym / redact --------------------------------------------------------------------


def tag(value: Any, entity: str) -> str:
    return f"[{entity}]"


def redact(value: Any, entity: str = "") -> str:
    return ""


class Pseudonymizer:
    """``[ENTITY:<10 hex>]`` from HMAC-SHA256(key, entity NUL normalised value).

    The entity is part of the message (domain separation: a phone and an account number that
    happen to share digits get unrelated tokens). Results are cached per (entity, raw value):
    identifiers repeat a lot in real datasets. The cache is cleared when it reaches
    ``cache_size`` entries so memory stays bounded.
    """

    def __init__(self, key: bytes, cache_size: int = 200_000) -> None:
        if not isinstance(key, bytes | bytearray) or not key:
            raise ValueError("pseudonym key must be non-empty bytes")
        self._key = bytes(key)
        self._cache: dict[tuple[str, str], str] = {}
        self._cache_size = cache_size

    def __call__(self, value: str, entity: str) -> str:
        cache_key = (entity, value)
        token = self._cache.get(cache_key)
        if token is None:
            msg = f"{entity}\x00{normalise(entity, value)}".encode()
            digest = hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:10]
            token = f"[{entity}:{digest}]"
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[cache_key] = token
        return token


def pseudonym(value: str, entity: str, key: bytes) -> str:
    """One-off pseudonym; use :class:`Pseudonymizer` for many values."""
    return Pseudonymizer(key, cache_size=1)(value, entity)


# --- year / age90 --------------------------------------------------------------------------------

_YEAR_RE = re.compile(r"(?<![0-9])(?:19|20)[0-9]{2}(?![0-9])")
_YMD8_RE = re.compile(r"((?:19|20)[0-9]{2})(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])")


def year(value: Any, entity: str = DATE) -> str:
    """``2024-03-05 14:30`` / ``2024年3月5日`` / ``05/03/2024`` / ``20240305`` -> ``"2024"``.
    A date without a year (``3月5日``) becomes the tag ``[DATE]``."""
    s = str(value)
    m = _YEAR_RE.search(s)
    if m:
        return m.group()
    m = _YMD8_RE.fullmatch(s.strip())
    if m:
        return m.group(1)
    return f"[{entity}]"


_LEADING_NUM_RE = re.compile(r"\s*([0-9]{1,3}(?:\.[0-9]+)?)(?![0-9])")


def age90(value: Any) -> Any:
    """Ages over 89 -> ``"90+"`` (a leading number in a string: ``"92岁"`` -> ``"90+岁"``);
    anything else unchanged."""
    t = type(value)
    if t is int or t is float:
        return "90+" if value > 89 else value
    if t is str:
        m = _LEADING_NUM_RE.match(value)
        if m and float(m.group(1)) > 89:
            return f"{value[: m.start(1)]}90+{value[m.end(1) :]}"
    return value


# --- bin -----------------------------------------------------------------------------------------

_NUM_JUNK_RE = re.compile(r"[,，\s¥￥$元]|RMB|CNY")


def parse_number(value: Any) -> float | None:
    """A finite number from int/float or a string like ``"12,345.6元"`` / ``"1.5万"``."""
    t = type(value)
    if t is int or t is float:
        x = float(value)
    elif t is str:
        s = _NUM_JUNK_RE.sub("", value)
        mult = 1.0
        if s.endswith("万"):
            s, mult = s[:-1], 1e4
        elif s.endswith("亿"):
            s, mult = s[:-1], 1e8
        try:
            x = float(s) * mult
        except ValueError:
            return None
    else:
        return None  # None, bool (an int subclass, but not an amount), containers
    return x if math.isfinite(x) else None


def _fmt_plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.10g}"


def _fmt_wan(x: float) -> str:
    if abs(x) >= 1e8:
        return f"{_fmt_plain(x / 1e8)}亿"
    if abs(x) >= 1e4:
        return f"{_fmt_plain(x / 1e4)}万"
    return _fmt_plain(x)


def format_bin_label(lo: float, hi: float, style: str = "plain") -> str:
    """``[lo, hi)`` as a label: plain ``10000-50000`` / ``200000+`` / ``<0``; Chinese
    ``style="wan"`` ``1-5万`` / ``0-1万`` / ``20万+`` (the shared unit is written once)."""
    fmt = _fmt_wan if style == "wan" else _fmt_plain
    if lo == -math.inf:
        return f"<{fmt(hi)}"
    if hi == math.inf:
        return f"{fmt(lo)}+"
    lo_s, hi_s = fmt(lo), fmt(hi)
    if style == "wan" and lo_s[-1:] in "万亿" and lo_s[-1:] == hi_s[-1:]:
        lo_s = lo_s[:-1]
    return f"{lo_s}{'~' if lo < 0 else '-'}{hi_s}"


class Binner:
    """Numeric binning into ``[edges[i], edges[i+1])``; the last bin is open-ended, so there is
    one label per edge. Values below ``edges[0]`` get an extra ``<edges[0]`` bin.

    With ``min_bin_size``, :meth:`observe` every value of the dataset first (the engine's
    ``fit``), then :meth:`merge`: any bin with fewer values than that is merged with its smaller
    neighbour until none is left (or one bin remains), so a rare range cannot single anyone
    out. Merged bins get generated labels in the same style.
    """

    def __init__(
        self,
        edges: Sequence[float],
        labels: Sequence[str] | None = None,
        style: str = "plain",
        min_bin_size: int | None = None,
    ) -> None:
        self.edges = [float(e) for e in edges]
        if labels and style == "plain" and any(("万" in s or "亿" in s) for s in labels):
            style = "wan"
        self.style = style
        self.min_bin_size = min_bin_size
        n = len(self.edges)
        auto = [format_bin_label(*self._bounds(i, i), style) for i in range(n + 1)]
        self._labels = [auto[0], *(labels if labels else auto[1:])]
        self.counts = [0] * (n + 1)
        self._out = list(self._labels)  # bin index -> output label
        self._groups: list[tuple[int, int]] = [(i, i) for i in range(n + 1)]
        self.merged = False

    def _bounds(self, first: int, last: int) -> tuple[float, float]:
        lo = -math.inf if first == 0 else self.edges[first - 1]
        hi = self.edges[last] if last < len(self.edges) else math.inf
        return lo, hi

    def _label(self, first: int, last: int) -> str:
        if first == last:
            return self._labels[first]
        return format_bin_label(*self._bounds(first, last), self.style)

    def observe(self, value: Any) -> None:
        x = parse_number(value)
        if x is not None:
            self.counts[bisect_right(self.edges, x)] += 1

    def merge(self) -> None:
        """Merge small bins (needs the counts from :meth:`observe`).

        Only bins that hold values take part: an empty bin singles nobody out, and merging it
        would only coarsen its neighbour's label. Empty bins lying between two merged bins
        become part of the merged range.
        """
        min_size = self.min_bin_size or 0
        groups = [[i, i, c] for i, c in enumerate(self.counts) if c]
        while len(groups) > 1:
            j = min(range(len(groups)), key=lambda k: groups[k][2])
            if groups[j][2] >= min_size:
                break
            if j == 0:
                k = 1
            elif j == len(groups) - 1:
                k = j - 1
            else:
                k = j - 1 if groups[j - 1][2] <= groups[j + 1][2] else j + 1
            a, b = min(j, k), max(j, k)
            groups[a] = [groups[a][0], groups[b][1], groups[a][2] + groups[b][2]]
            del groups[b]
        starts = {g[0]: g[1] for g in groups}
        self._groups = []
        i = 0
        while i < len(self.counts):
            last = starts.get(i, i)
            self._groups.append((i, last))
            label = self._label(i, last)
            for k in range(i, last + 1):
                self._out[k] = label
            i = last + 1
        self.merged = True

    def apply(self, value: Any) -> Any:
        """The bin label, or the value unchanged when it is not a number."""
        x = parse_number(value)
        if x is None:
            return value
        return self._out[bisect_right(self.edges, x)]

    def summary(self) -> list[dict[str, Any]]:
        """Bins as they are applied: label, low (None = unbounded), high, count seen in fit.
        The "below the first edge" bin is listed only when it holds values."""
        out = []
        for first, last in self._groups:
            if first == last == 0 and not self.counts[0]:
                continue
            lo, hi = self._bounds(first, last)
            out.append(
                {
                    "label": self._out[first],
                    "low": None if lo == -math.inf else lo,
                    "high": None if hi == math.inf else hi,
                    "count": sum(self.counts[first : last + 1]),
                }
            )
        return out


# --- binding -------------------------------------------------------------------------------------

OperatorFn = Callable[[Any], Any]


def make_operator(
    name: str,
    entity: str,
    params: dict[str, Any],
    pseudonymizer: Pseudonymizer,
    binner: Binner | None = None,
) -> OperatorFn:
    """A one-argument callable with the entity and parameters bound (built once per policy,
    not per value). Non-string values are stringified for the text operators."""
    if name == "mask":
        ks, ke = params.get("keep_start"), params.get("keep_end")
        ch = params.get("char", "*")

        def _mask(v: Any) -> str:
            v = v if type(v) is str else str(v)
            return mask(v, entity, keep_start=ks, keep_end=ke, char=ch)

        return _mask
    if name == "tag":
        placeholder = f"[{entity}]"
        return lambda v: placeholder
    if name == "pseudonym":
        return lambda v: pseudonymizer(v if type(v) is str else str(v), entity)
    if name == "redact":
        return lambda v: ""
    if name == "year":
        return lambda v: year(v, entity)
    if name == "age90":
        return age90
    if name == "bin":
        if binner is None:
            binner = Binner(
                params["edges"], params.get("labels"), params.get("style", "plain"),
                params.get("min_bin_size"),
            )  # fmt: skip
        return binner.apply
    if name == "keep":
        return lambda v: v
    raise ValueError(f"unknown operator {name!r}")
