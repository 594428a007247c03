"""Placeholders left by desensitization, which augmentation must never alter.

The patterns below mirror the output format of ``datasets_app.desensitize.operators`` (its
``PLACEHOLDER_RE``): tags such as ``[ID_CARD]``, pseudonyms such as ``[PERSON:9f3a2c1d7b]`` and
masked values such as ``110105********002X`` or ``138****5678``. They are redefined here rather
than imported so that this package stays importable on its own (the desensitize package is written
in parallel); if the operators' output format changes, change it here too.
"""

from __future__ import annotations

import re
from collections import Counter

# A tag or a pseudonym: upper-case name, optionally ":" + 10 lower-case hex digits.
TAG_RE = re.compile(r"\[[A-Z][A-Z0-9_]*(?::[0-9a-f]{10})?\]")

# A masked value is "a run of non-space characters containing **". Chinese has no spaces, so a run
# is also ended by full-width punctuation, brackets, parentheses and quotes; otherwise one mask
# would freeze a whole Chinese sentence. ASCII "." ":" "@" "-" "/" stay inside (masked e-mails,
# URLs, IDs) and trailing ASCII punctuation is trimmed off afterwards (a sentence's full stop).
_MASK_CHARS = r"[^\s\[\]()\"'，。！？；：、“”‘’「」『』（）《》〈〉【】]"
MASK_RE = re.compile(rf"{_MASK_CHARS}*\*\*{_MASK_CHARS}*")
_MASK_TRAILING = ".,;:!?"

Span = tuple[int, int]


def find_protected(text: str) -> list[Span]:
    """Sorted, non-overlapping (start, end) spans of every placeholder in ``text``."""
    spans: list[Span] = [m.span() for m in TAG_RE.finditer(text)]
    # Masks are searched only between tags, so that a tag is never swallowed into a mask run.
    cursor = 0
    for start, end in [*spans, (len(text), len(text))]:
        for m in MASK_RE.finditer(text, cursor, start):
            m_start, m_end = m.span()
            while m_end > m_start and text[m_end - 1] in _MASK_TRAILING:
                m_end -= 1
            if "**" in text[m_start:m_end]:
                spans.append((m_start, m_end))
        cursor = end
    spans.sort()
    return spans


def split_protected(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` into consecutive (segment, is_protected) pieces that join back to it."""
    pieces: list[tuple[str, bool]] = []
    cursor = 0
    for start, end in find_protected(text):
        if start > cursor:
            pieces.append((text[cursor:start], False))
        pieces.append((text[start:end], True))
        cursor = end
    if cursor < len(text):
        pieces.append((text[cursor:], False))
    return pieces


def placeholders(text: str) -> Counter[str]:
    """Multiset of the placeholders in ``text`` (used by the engine's safety check and tests)."""
    return Counter(text[s:e] for s, e in find_protected(text))


def intact(before: str, after: str, *, extra: str = "", mode: str = "exact") -> bool:
    """Whether ``after`` kept every placeholder of ``before`` whole.

    mode "exact": the same placeholders, the same number of times, and no new "*" or tags.
    mode "superset": all of ``before``'s placeholders are still there (text was only added).
    mode "subset": ``after`` only holds whole placeholders taken from ``before`` + ``extra``
    (a truncate-splice keeps part of one text and part of another).
    Substring counts are used for masks because a mask run may legitimately grow or shrink with
    its neighbouring characters (e.g. a word inserted right before ``138****5678`` in Chinese).
    """
    old = placeholders(before)
    old_tags = Counter(TAG_RE.findall(before))
    new_tags = Counter(TAG_RE.findall(after))
    if mode == "exact":
        return (
            old_tags == new_tags
            and before.count("*") == after.count("*")
            and all(after.count(p) == before.count(p) for p in old)
        )
    if mode == "superset":
        return all(after.count(p) >= before.count(p) for p in old) and not (old_tags - new_tags)
    if mode == "subset":
        pool = old + placeholders(extra)
        allowed_tags = old_tags + Counter(TAG_RE.findall(extra))
        stars = sum(p.count("*") * n for p, n in pool.items())
        found = placeholders(after)
        return (
            not (new_tags - allowed_tags)
            and after.count("*") <= stars
            # every placeholder found holds one whole source placeholder and no stray "*"
            and all(any(q in p and q.count("*") == p.count("*") for q in pool) for p in found)
            # and every "*" of the result belongs to one of them
            and sum(p.count("*") * n for p, n in found.items()) == after.count("*")
        )
    raise ValueError(f"unknown mode {mode!r}")
