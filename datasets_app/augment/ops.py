"""Augmentation operators: each takes text and a ``random.Random`` and returns new text.

All randomness comes from the ``rng`` argument, so a seeded caller gets reproducible output.
Placeholders (see ``placeholders.py``) are single PROTECTED tokens that no operator replaces,
moves, deletes or inserts into; they are never picked as a swap or delete target.
EDA operators follow Wei & Zou 2019, "EDA: Easy Data Augmentation Techniques".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from .text import (
    SENTENCE_END_CHARS,
    SPACE,
    WORD,
    Token,
    detokenize,
    join_text,
    needs_space,
    script_of,
    split_sentences,
    synonyms_for,
    tokenize,
)

Generate = Callable[[str], str]
Templates = Sequence[str] | Mapping[str, Sequence[str]]

# "{text}" marks where the row's text goes; templates only add neutral context, never facts.
CONTEXT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "zh": (
        "以下是一段需要处理的内容：{text}",
        "请参考下面的信息。{text}",
        "背景说明：本条记录来自日常业务。{text}",
        "补充说明：以下内容已做脱敏处理。{text}",
        "根据现有资料，{text}",
        "这是一条内部记录。{text}",
        "请仔细阅读以下内容。{text}",
        "相关情况如下：{text}",
        "{text}以上信息仅供参考。",
        "{text}请结合上述信息进行判断。",
        "{text}以上内容来自内部记录。",
        "{text}如有疑问，请进一步核实。",
    ),
    "en": (
        "Here is the relevant information: {text}",
        "Please consider the following. {text}",
        "Background: this record comes from routine operations. {text}",
        "Note: personal details below have been anonymised. {text}",
        "Context for reference: {text}",
        "The following is an internal record. {text}",
        "Please read the following carefully. {text}",
        "Details are as follows: {text}",
        "{text} The information above is for reference only.",
        "{text} Please take the above into account.",
        "{text} The above comes from an internal record.",
        "{text} If anything is unclear, please verify it further.",
    ),
}


def _match_case(source: str, word: str) -> str:
    if len(source) > 1 and source.isupper():
        return word.upper()
    if source[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _word_indices(tokens: list[Token]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.kind == WORD]


def _synonym_indices(tokens: list[Token]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.kind == WORD and synonyms_for(t.text)]


def synonym_replace(text: str, rng: random.Random, n: int = 2) -> str:
    """Replace up to ``n`` distinct words that have a listed synonym with one of them."""
    tokens = tokenize(text)
    candidates = _synonym_indices(tokens)
    rng.shuffle(candidates)
    for i in candidates[:n]:
        source = tokens[i].text
        tokens[i] = Token(_match_case(source, rng.choice(synonyms_for(source))), WORD)
    return detokenize(tokens)


def random_swap(text: str, rng: random.Random, n: int = 1) -> str:
    """Swap two random words, ``n`` times. Placeholders, numbers and punctuation stay put."""
    tokens = tokenize(text)
    words = _word_indices(tokens)
    if len(words) < 2:
        return text
    for _ in range(n):
        a, b = rng.sample(words, 2)
        tokens[a], tokens[b] = tokens[b], tokens[a]
    return detokenize(tokens)


def random_delete(text: str, rng: random.Random, p: float = 0.1) -> str:
    """Delete each word with probability ``p``; at least one word always survives."""
    tokens = tokenize(text)
    words = _word_indices(tokens)
    if len(words) < 2:
        return text
    doomed = {i for i in words if rng.random() < p}
    if len(doomed) == len(words):
        doomed.discard(rng.choice(words))
    if not doomed:
        return text
    # Take one neighbouring space with each deleted word so "a b c" loses "b" as "a c", not
    # "a  c"; never a line break, which carries structure.
    for i in sorted(doomed):
        before, after = i - 1, i + 1
        if before >= 0 and tokens[before].kind == SPACE and before not in doomed:
            if "\n" not in tokens[before].text:
                doomed.add(before)
        elif after < len(tokens) and tokens[after].kind == SPACE and "\n" not in tokens[after].text:
            doomed.add(after)
    return detokenize([t for i, t in enumerate(tokens) if i not in doomed])


def random_insert(text: str, rng: random.Random, n: int = 1) -> str:
    """Insert a synonym of a random word at a random word boundary, ``n`` times."""
    tokens = tokenize(text)
    for _ in range(n):
        sources = _synonym_indices(tokens)
        if not sources:
            break
        source = tokens[rng.choice(sources)].text
        new = Token(rng.choice(synonyms_for(source)), WORD)
        # Before any word, or right after the last one: never inside or next to nothing.
        words = _word_indices(tokens)
        at = rng.choice([*words, words[-1] + 1])
        piece = [new]
        if at > 0 and needs_space(tokens[at - 1].text, new.text):
            piece.insert(0, Token(" ", SPACE))
        if at < len(tokens) and needs_space(new.text, tokens[at].text):
            piece.append(Token(" ", SPACE))
        tokens[at:at] = piece
    return detokenize(tokens)


def truncate_splice(text: str, rng: random.Random, other_text: str, max_sentences: int = 2) -> str:
    """Keep the first sentences of ``text`` and append 1..max_sentences sentences of another.

    Both cuts fall on sentence boundaries (Chinese 。！？； and English .!?;), and sentence
    boundaries are never searched inside placeholders, so none is ever split.
    """
    mine = split_sentences(text)
    theirs = [s for s in split_sentences(other_text) if s.strip()]
    if not mine or not theirs:
        return text
    # Drop at least one sentence when there is more than one; always keep at least one.
    keep = rng.randint(1, len(mine) - 1) if len(mine) > 1 else 1
    start = rng.randrange(len(theirs))
    stop = rng.randint(start + 1, min(len(theirs), start + max(1, max_sentences)))
    head = "".join(mine[:keep]).rstrip()
    piece = "".join(theirs[start:stop]).strip()
    if head and head[-1] not in SENTENCE_END_CHARS and not head.endswith(("”", "’", ")", "）")):
        head += "。" if script_of(head) == "zh" else "."
    return join_text(head, piece)


def _templates_for(lang: str, templates: Templates | None) -> Sequence[str]:
    if templates is None:
        return CONTEXT_TEMPLATES[lang]
    if isinstance(templates, Mapping):
        return templates.get(lang) or CONTEXT_TEMPLATES[lang]
    return templates


def context_extend(
    text: str,
    rng: random.Random,
    templates: Templates | None = None,
    generate: Generate | None = None,
) -> str:
    """Add a context sentence around ``text``.

    With ``generate`` (prompt -> continuation, e.g. a registered model run on the worker) its
    continuation is appended. Otherwise a template is picked for the text's script: a template
    holding "{text}" wraps the text there; one without it is prepended or appended at random.
    ``templates`` is a list of strings, or {"zh": [...], "en": [...]}; None means the bundled ones.
    """
    if not text.strip():
        return text
    if generate is not None:
        continuation = generate(text)
        if not isinstance(continuation, str):
            raise TypeError("generate() must return a string")
        continuation = continuation.strip()
        # Text-generation pipelines often echo the prompt before the continuation.
        if continuation.startswith(text.strip()):
            continuation = continuation[len(text.strip()) :].strip()
        return join_text(text, continuation) if continuation else text
    lang = script_of(text)
    pool = _templates_for(lang, templates)
    if not pool:
        return text
    template = rng.choice(list(pool))

    def closed(body: str) -> str:
        # A sentence appended after the text needs the text's last sentence closed first.
        if body.rstrip()[-1:] in SENTENCE_END_CHARS:
            return body
        return body.rstrip() + ("。" if lang == "zh" else ".")

    if "{text}" in template:
        # The template carries its own spacing around the text.
        before, after = template.split("{text}", 1)
        return before + (closed(text) if after.strip() else text) + after
    if rng.random() < 0.5:
        return join_text(template, text)
    return join_text(closed(text), template)


__all__ = [
    "CONTEXT_TEMPLATES",
    "context_extend",
    "random_delete",
    "random_insert",
    "random_swap",
    "synonym_replace",
    "truncate_splice",
]
