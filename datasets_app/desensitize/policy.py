"""Desensitization policy: which entities to look for, what to do with them, which columns
carry names/addresses/amounts. Built from, and serialised to, a JSON-compatible dict::

    {
      "entities": {                       # free-text detection, and templates for columns
        "ID_CARD": {"operator": "pseudonym"},
        "PHONE": {"operator": "mask"},
        "EMAIL": "tag",                   # shorthand for {"operator": "tag"}
        "PERSON": {"operator": "pseudonym"}   # column-only entity: a template, see below
      },
      "columns": {                        # designated columns: the rule replaces the value
        "name": {"entity": "PERSON", "operator": "pseudonym"},
        "patient": {"entity": "PERSON"},  # operator taken from entities.PERSON
        "amount": {"operator": "bin", "edges": [0, 10000, 50000, 200000],
                   "labels": ["0-1万", "1-5万", "5-20万", "20万+"], "min_bin_size": 5},
        "visit_date": {"operator": "year"}
      },
      "scan_columns": null,               # null = every column without a rule; or a list
      "custom_patterns": {"MRN": "MRN\\\\d{8}"},   # or {"pattern": ..., "score": 0.9}
      "min_score": 0.5
    }

Entities listed in ``entities`` are the only ones detected in free text; a custom pattern whose
name is not listed there is tagged. Columns with a rule are not scanned as free text.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .detectors import (
    AGE,
    AMOUNT,
    COLUMN_ONLY_ENTITIES,
    DATE,
    DETECTABLE_ENTITIES,
    ENTITY_NAME_RE,
)
from .operators import OPERATOR_PARAMS, OPERATORS


class PolicyError(ValueError):
    """The policy dict is invalid; the message names the offending key."""


@dataclass(frozen=True)
class EntityRule:
    operator: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"operator": self.operator, **self.params}


@dataclass(frozen=True)
class ColumnRule:
    operator: str
    entity: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "operator": self.operator, **self.params}


@dataclass(frozen=True)
class CustomPattern:
    pattern: str
    score: float = 0.9

    def to_json(self) -> str | dict[str, Any]:
        return self.pattern if self.score == 0.9 else {"pattern": self.pattern, "score": self.score}


_TOP_KEYS = frozenset({"entities", "columns", "scan_columns", "custom_patterns", "min_score"})
# Entity implied by a column operator when the rule names none.
_OPERATOR_ENTITY = {"year": DATE, "age90": AGE, "bin": AMOUNT}


def _is_number(x: Any) -> bool:
    return type(x) in (int, float) and math.isfinite(x)


def _validate_params(where: str, op: str, params: Mapping[str, Any]) -> dict[str, Any]:
    if op not in OPERATORS:
        known = ", ".join(OPERATORS)
        raise PolicyError(f"{where}.operator: unknown operator {op!r} (known: {known})")
    allowed = OPERATOR_PARAMS.get(op, frozenset())
    extra = sorted(set(params) - allowed)
    if extra:
        what = f"accepts only {', '.join(sorted(allowed))}" if allowed else "takes no parameters"
        raise PolicyError(f"{where}: unknown parameter(s) {', '.join(extra)}; {op!r} {what}")
    out = dict(params)
    if op == "mask":
        for key in ("keep_start", "keep_end"):
            if key in out and (type(out[key]) is not int or out[key] < 0):
                raise PolicyError(f"{where}.{key}: must be a non-negative integer")
        ch = out.get("char", "*")
        if not isinstance(ch, str) or len(ch) != 1 or ch.isspace() or ch.isalnum():
            raise PolicyError(f"{where}.char: must be one non-alphanumeric, non-space character")
    elif op == "bin":
        edges = out.get("edges")
        if not isinstance(edges, list) or not edges or not all(_is_number(e) for e in edges):
            raise PolicyError(f"{where}.edges: a non-empty list of numbers is required for 'bin'")
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise PolicyError(f"{where}.edges: must be strictly increasing, got {edges}")
        labels = out.get("labels")
        if labels is not None:
            if not isinstance(labels, list) or not all(isinstance(s, str) and s for s in labels):
                raise PolicyError(f"{where}.labels: must be a list of non-empty strings")
            if len(labels) != len(edges):
                raise PolicyError(
                    f"{where}.labels: {len(labels)} labels for {len(edges)} edges; give one label "
                    "per edge (the last bin, from the last edge up, is open-ended)"
                )
        if out.get("style", "plain") not in ("plain", "wan"):
            raise PolicyError(f"{where}.style: must be 'plain' or 'wan'")
        mbs = out.get("min_bin_size")
        if mbs is not None and (type(mbs) is not int or mbs < 1):
            raise PolicyError(f"{where}.min_bin_size: must be a positive integer")
    return out


def _split_rule(where: str, raw: Any) -> tuple[str | None, dict[str, Any]]:
    if isinstance(raw, str):
        return raw, {}
    if not isinstance(raw, Mapping):
        raise PolicyError(f'{where}: must be an object like {{"operator": "mask"}}')
    params = dict(raw)
    op = params.pop("operator", None)
    if op is not None and not isinstance(op, str):
        raise PolicyError(f"{where}.operator: must be a string")
    return op, params


@dataclass(frozen=True)
class Policy:
    entities: dict[str, EntityRule] = field(default_factory=dict)
    columns: dict[str, ColumnRule] = field(default_factory=dict)
    scan_columns: tuple[str, ...] | None = None
    custom_patterns: dict[str, CustomPattern] = field(default_factory=dict)
    min_score: float = 0.5

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Validate ``data`` and build a policy; raises :class:`PolicyError`."""
        if not isinstance(data, Mapping):
            raise PolicyError("policy: must be an object")
        extra = sorted(set(data) - _TOP_KEYS)
        if extra:
            raise PolicyError(
                f"policy: unknown key(s) {', '.join(extra)} (known: {', '.join(sorted(_TOP_KEYS))})"
            )

        custom: dict[str, CustomPattern] = {}
        raw_custom = data.get("custom_patterns") or {}
        if not isinstance(raw_custom, Mapping):
            raise PolicyError("custom_patterns: must be an object of name -> regex")
        for name, spec in raw_custom.items():
            where = f"custom_patterns.{name}"
            if not isinstance(name, str) or not ENTITY_NAME_RE.match(name):
                raise PolicyError(f"{where}: entity names are UPPER_CASE letters, digits and _")
            score = 0.9
            if isinstance(spec, Mapping):
                if set(spec) - {"pattern", "score"}:
                    raise PolicyError(f"{where}: only 'pattern' and 'score' are accepted")
                score = spec.get("score", 0.9)
                spec = spec.get("pattern")
                if not _is_number(score) or not 0 <= score <= 1:
                    raise PolicyError(f"{where}.score: must be a number between 0 and 1")
            if not isinstance(spec, str) or not spec:
                raise PolicyError(f"{where}: must be a regular expression string")
            try:
                compiled = re.compile(spec)
            except re.error as exc:
                raise PolicyError(f"{where}: invalid regular expression: {exc}") from None
            if compiled.fullmatch("") is not None:
                raise PolicyError(f"{where}: the pattern matches the empty string")
            custom[name] = CustomPattern(spec, float(score))

        known = DETECTABLE_ENTITIES | COLUMN_ONLY_ENTITIES | set(custom)

        def check_entity(where: str, name: Any) -> str:
            if not isinstance(name, str) or name not in known:
                raise PolicyError(
                    f"{where}: unknown entity {name!r} (known: {', '.join(sorted(known))}; "
                    "add a custom pattern to define a new one)"
                )
            return name

        entities: dict[str, EntityRule] = {}
        raw_entities = data.get("entities") or {}
        if not isinstance(raw_entities, Mapping):
            raise PolicyError("entities: must be an object of ENTITY -> rule")
        for name, raw in raw_entities.items():
            where = f"entities.{name}"
            check_entity(where, name)
            op, params = _split_rule(where, raw)
            if op is None:
                raise PolicyError(f"{where}.operator: required")
            params = _validate_params(where, op, params)
            if op == "bin" and name not in COLUMN_ONLY_ENTITIES:
                raise PolicyError(f"{where}: 'bin' applies to numeric columns (or AMOUNT)")
            if op == "year" and name not in (DATE, *custom):
                raise PolicyError(f"{where}: 'year' applies to DATE")
            if op == "age90" and name not in (AGE, *custom):
                raise PolicyError(f"{where}: 'age90' applies to AGE")
            entities[name] = EntityRule(op, params)
        for name in custom:  # a custom pattern without a rule is tagged
            entities.setdefault(name, EntityRule("tag"))

        columns: dict[str, ColumnRule] = {}
        raw_columns = data.get("columns") or {}
        if not isinstance(raw_columns, Mapping):
            raise PolicyError("columns: must be an object of column name -> rule")
        for col, raw in raw_columns.items():
            where = f"columns.{col}"
            if not isinstance(col, str) or not col:
                raise PolicyError("columns: column names must be non-empty strings")
            op, params = _split_rule(where, raw)
            entity = params.pop("entity", None)
            if entity is not None:
                check_entity(f"{where}.entity", entity)
            if op is None:
                if entity is None:
                    raise PolicyError(f"{where}: give an operator, or an entity with a rule")
                template = entities.get(entity)
                if template is None:
                    raise PolicyError(
                        f"{where}: no operator, and entity {entity} has no rule in 'entities'"
                    )
                op, params = template.operator, {**template.params, **params}
            params = _validate_params(where, op, params)
            if entity is None:
                entity = _OPERATOR_ENTITY.get(op) or _entity_from_column(col)
            columns[col] = ColumnRule(op, entity, params)

        scan = data.get("scan_columns")
        if scan is not None:
            if not isinstance(scan, list | tuple) or not all(isinstance(c, str) for c in scan):
                raise PolicyError("scan_columns: must be null (all columns) or a list of names")
            scan = tuple(dict.fromkeys(scan))

        min_score = data.get("min_score", 0.5)
        if not _is_number(min_score) or not 0 <= min_score <= 1:
            raise PolicyError("min_score: must be a number between 0 and 1")

        return cls(entities, columns, scan, custom, float(min_score))

    def to_dict(self) -> dict[str, Any]:
        return {
            "entities": {k: v.to_dict() for k, v in self.entities.items()},
            "columns": {k: v.to_dict() for k, v in self.columns.items()},
            "scan_columns": None if self.scan_columns is None else list(self.scan_columns),
            "custom_patterns": {k: v.to_json() for k, v in self.custom_patterns.items()},
            "min_score": self.min_score,
        }

    # -- derived ----------------------------------------------------------------------------------

    @property
    def detected_entities(self) -> frozenset[str]:
        """Entities searched for in free text (built-in or custom, operator not ``keep``)."""
        return frozenset(
            name
            for name, rule in self.entities.items()
            if rule.operator != "keep"
            and (name in DETECTABLE_ENTITIES or name in self.custom_patterns)
        )

    @property
    def needs_fit(self) -> bool:
        """True when a bin rule has ``min_bin_size`` (a first pass over the data is needed)."""
        return any(
            r.operator == "bin" and r.params.get("min_bin_size") for r in self.columns.values()
        )


def _entity_from_column(column: str) -> str:
    """``amount`` -> ``AMOUNT``; a name with no usable ASCII letters -> ``FIELD``."""
    name = re.sub(r"[^A-Z0-9_]+", "_", column.upper()).strip("_")
    return name if name and ENTITY_NAME_RE.match(name) else "FIELD"
