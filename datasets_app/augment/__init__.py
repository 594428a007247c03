"""Text data augmentation for dataset versions (Django-free: pure Python + jieba).

``augment_rows(rows, config)`` yields each row and N seeded augmented copies of it; the ops in
``ops`` (synonym replacement, EDA swap/delete/insert, truncate-splice, context extension) never
alter desensitization placeholders (``placeholders``).
"""

from .engine import (
    OP_NAMES,
    AugmentConfig,
    AugmentConfigError,
    AugmentReport,
    augment_rows,
)
from .ops import (
    context_extend,
    random_delete,
    random_insert,
    random_swap,
    synonym_replace,
    truncate_splice,
)
from .placeholders import find_protected, placeholders
from .text import load_synonyms

__all__ = [
    "OP_NAMES",
    "AugmentConfig",
    "AugmentConfigError",
    "AugmentReport",
    "augment_rows",
    "context_extend",
    "find_protected",
    "load_synonyms",
    "placeholders",
    "random_delete",
    "random_insert",
    "random_swap",
    "synonym_replace",
    "truncate_splice",
]
