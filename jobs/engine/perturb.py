"""Prompt perturbations for the robustness check: what real users type, not adversarial noise.

  typos       adjacent letters swapped inside longer Latin words (about one word in six)
  homophones  Chinese characters and English words users confuse by sound (的/得/地, 在/再,
              their/there, …), one in three occurrences
  synonyms    word swaps from the augmentation synonym lists (datasets_app.augment, jieba for
              Chinese word boundaries)
Seeded: the same prompt is perturbed the same way on every run, so two evaluations compare.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

# Pairs confused by sound; each member may be typed for the other.
HAN_HOMOPHONES = [
    "的得地",
    "在再",
    "做作",
    "已以",
    "他她它",
    "哪那",
    "账帐",
    "象像",
    "即既",
    "须需",
    "练炼",
    "历厉",
    "副付",
    "型形",
    "期其",
    "帐仗",
    "支只",
    "部步",
    "制治",
    "定订",
]
EN_HOMOPHONES = [
    ("their", "there"),
    ("your", "you're"),
    ("to", "too"),
    ("its", "it's"),
    ("than", "then"),
    ("affect", "effect"),
    ("principal", "principle"),
    ("weather", "whether"),
    ("hear", "here"),
    ("know", "no"),
    ("right", "write"),
    ("loan", "lone"),
    ("week", "weak"),
    ("rate", "rait"),
]
_HAN_SWAP = {c: group.replace(c, "") for group in HAN_HOMOPHONES for c in group}
_EN_SWAP = {a: b for pair in EN_HOMOPHONES for a, b in (pair, pair[::-1])}
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def typos(text: str, rng: random.Random) -> str:
    def swap(match: re.Match) -> str:
        word = match.group(0)
        if len(word) < 4 or rng.random() > 0.17:
            return word
        i = rng.randrange(1, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]

    return _LATIN_WORD.sub(swap, text)


def homophones(text: str, rng: random.Random) -> str:
    chars = [
        rng.choice(_HAN_SWAP[c]) if c in _HAN_SWAP and rng.random() < 0.34 else c for c in text
    ]

    def swap(match: re.Match) -> str:
        word = match.group(0)
        other = _EN_SWAP.get(word.lower())
        if other is None or rng.random() > 0.34:
            return word
        return other.capitalize() if word[0].isupper() else other

    return _LATIN_WORD.sub(swap, "".join(chars))


def synonyms(text: str, rng: random.Random) -> str:
    from datasets_app.augment.ops import synonym_replace

    return synonym_replace(text, rng, n=max(1, len(text) // 40))


PERTURBERS: dict[str, Callable[[str, random.Random], str]] = {
    "typos": typos,
    "homophones": homophones,
    "synonyms": synonyms,
}


def perturb(kind: str, text: str, seed: int) -> str:
    return PERTURBERS[kind](text, random.Random(f"{kind}:{seed}:{text}"))  # noqa: S311
