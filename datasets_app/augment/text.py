"""Tokenizing mixed Chinese/English text around protected placeholders, and the synonym lists."""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from types import ModuleType

from .placeholders import split_protected

WORD = "word"  # contains a letter or a Han character: may be replaced, swapped, deleted
SPACE = "space"
OTHER = "other"  # punctuation, numbers: kept in place (numbers are doses and amounts)
PROTECTED = "protected"  # a desensitization placeholder: atomic and immovable

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN_RE = re.compile(f"[{_HAN}]")
# Han runs go to jieba; everything else through a simple Latin tokenizer that keeps whitespace and
# punctuation as tokens so that the text joins back byte for byte.
_CHUNK_RE = re.compile(
    rf"(?P<han>[{_HAN}]+)"
    r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
    r"|(?P<num>\d+(?:[.,:]\d+)*)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.S,
)
_LATIN_ALNUM_RE = re.compile(r"[^\W_]")

# Sentence ends: Chinese 。！？； anywhere; ASCII .!?; only before whitespace, the end, or Han
# (so "3.5" and "v1.2" are not cut); closing quotes and brackets stay with their sentence.
_SENT_END_RE = re.compile(
    rf"[。！？；]+[”’」』）)\"']*|[.!?;]+[\"')\]”’]*(?=\s|$|[{_HAN}])",
)
SENTENCE_END_CHARS = "。！？；.!?;"


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    kind: str


_jieba_lock = threading.Lock()


@functools.cache
def _jieba() -> ModuleType:
    """Import and initialise jieba once, quietly, with its cache in a writable folder."""
    with _jieba_lock:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        # The default cache location may be read-only inside containers.
        jieba.dt.tmp_dir = tempfile.gettempdir()
        return jieba


def _load_groups(filename: str) -> list[list[str]]:
    raw = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    groups = []
    for line in raw.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            groups.append(line.split())
    return groups


@functools.cache
def load_synonyms(lang: str) -> dict[str, tuple[str, ...]]:
    """word -> its synonyms (other members of every group it is in), in file order.

    Tuples in file order, never sets: set order of strings changes with PYTHONHASHSEED and would
    make seeded runs differ between processes. English keys are lower-case.
    """
    if lang not in ("zh", "en"):
        raise ValueError(f"unknown language {lang!r}")
    table: dict[str, list[str]] = {}
    for group in _load_groups(f"synonyms_{lang}.txt"):
        words = [w.lower() for w in group] if lang == "en" else group
        for word in words:
            bucket = table.setdefault(word, [])
            bucket.extend(w for w in words if w != word and w not in bucket)
    return {word: tuple(syns) for word, syns in table.items() if syns}


def synonyms_for(word: str) -> tuple[str, ...]:
    if HAN_RE.search(word):
        return load_synonyms("zh").get(word, ())
    return load_synonyms("en").get(word.lower(), ())


def _merge_synonym_words(pieces: list[str]) -> list[str]:
    """Re-join 2-3 jieba pieces that form a listed word jieba does not know as one."""
    table = load_synonyms("zh")
    merged: list[str] = []
    i = 0
    while i < len(pieces):
        for size in (3, 2):
            joined = "".join(pieces[i : i + size])
            if i + size <= len(pieces) and len(joined) <= 6 and joined in table:
                merged.append(joined)
                i += size
                break
        else:
            merged.append(pieces[i])
            i += 1
    return merged


def tokenize(text: str) -> list[Token]:
    """Tokens that join back to ``text``; each placeholder is one PROTECTED token."""
    tokens: list[Token] = []
    for segment, protected in split_protected(text):
        if protected:
            tokens.append(Token(segment, PROTECTED))
            continue
        for m in _CHUNK_RE.finditer(segment):
            kind = m.lastgroup
            if kind == "han":
                pieces = _merge_synonym_words(_jieba().lcut(m.group()))
                tokens.extend(Token(p, WORD) for p in pieces)
            elif kind == "word":
                tokens.append(Token(m.group(), WORD))
            elif kind == "space":
                tokens.append(Token(m.group(), SPACE))
            else:
                tokens.append(Token(m.group(), OTHER))
    return tokens


def detokenize(tokens: list[Token]) -> str:
    return "".join(t.text for t in tokens)


def is_latin_edge(char: str) -> bool:
    return bool(_LATIN_ALNUM_RE.match(char)) and not HAN_RE.match(char)


def needs_space(left: str, right: str) -> bool:
    """Whether two pieces of text need a space between them (Latin words do, Han does not)."""
    if not left or not right or left[-1].isspace() or right[0].isspace():
        return False
    if not is_latin_edge(right[0]):
        return False
    return is_latin_edge(left[-1]) or left[-1] in ",;:.!?)]”’"


def join_text(left: str, right: str) -> str:
    return f"{left} {right}" if needs_space(left, right) else left + right


def script_of(text: str) -> str:
    """ "zh" or "en": a Han character weighs about as much as a five-letter English word."""
    han = len(HAN_RE.findall(text))
    latin = sum(1 for c in text if is_latin_edge(c) and c.isalpha())
    return "zh" if han and han * 5 >= latin else "en"


def split_sentences(text: str) -> list[str]:
    """Sentences (each with its end punctuation and following whitespace) that join to ``text``.

    Ends found inside a placeholder never count, so a sentence never splits one.
    """
    ends: list[int] = []
    offset = 0
    for segment, protected in split_protected(text):
        if not protected:
            for m in _SENT_END_RE.finditer(segment):
                end = offset + m.end()
                while end < len(text) and text[end].isspace():
                    end += 1
                ends.append(end)
        offset += len(segment)
    sentences: list[str] = []
    start = 0
    for end in ends:
        if end > start:
            sentences.append(text[start:end])
            start = end
    rest = text[start:]
    if rest.strip():
        sentences.append(rest)
    elif rest and sentences:
        sentences[-1] += rest
    elif rest:
        sentences.append(rest)
    return sentences
