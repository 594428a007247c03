"""Apply a :class:`~.policy.Policy` to dataset rows (dicts of column -> value).

Values may be str, int, float, bool, None, or nested lists/dicts (chat ``messages``); string
leaves of scanned columns are searched for entities, designated columns get their rule applied
to every leaf. Non-string values of scanned columns are left as they are.

Built for millions of rows: the analyzer and every operator are built once per policy, a row is
copied only at the top level and in the nested containers that actually change, and strings
without candidates cost a few fast regex scans.
"""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .detectors import DETECTABLE_ENTITIES, Analyzer, Finding
from .operators import Binner, OperatorFn, Pseudonymizer, make_operator
from .policy import Policy

Row = Mapping[str, Any]


class Desensitizer:
    """Desensitize rows with one policy and one pseudonym key.

    Usage::

        d = Desensitizer(policy, key)
        if d.needs_fit:          # a bin rule has min_bin_size: first pass over the data
            d.fit(rows)
        for row in rows:
            out = d.transform_row(row)
        d.report()

    :meth:`report` and :meth:`preview` return before/after pairs that contain RAW data: the
    caller must show them only to users allowed to see raw data (``view_raw``).
    """

    def __init__(
        self, policy: Policy | Mapping[str, Any], hmac_key: bytes, sample_size: int = 20
    ) -> None:
        self.policy = policy if isinstance(policy, Policy) else Policy.from_dict(policy)
        self.sample_size = sample_size
        self._pseudonymizer = Pseudonymizer(hmac_key)
        pol = self.policy
        detected = pol.detected_entities
        custom = {
            name: (cp.pattern, cp.score)
            for name, cp in pol.custom_patterns.items()
            if name in detected
        }
        self.analyzer = Analyzer(detected & DETECTABLE_ENTITIES, custom, pol.min_score)
        self._entity_ops: dict[str, OperatorFn] = {
            name: make_operator(
                pol.entities[name].operator, name, pol.entities[name].params, self._pseudonymizer
            )
            for name in detected
        }
        self._binners: dict[str, Binner] = {}
        self._column_ops: dict[str, tuple[str, OperatorFn]] = {}
        for col, rule in pol.columns.items():
            binner = None
            if rule.operator == "bin":
                p = rule.params
                binner = Binner(
                    p["edges"], p.get("labels"), p.get("style", "plain"), p.get("min_bin_size")
                )
                self._binners[col] = binner
            op = make_operator(rule.operator, rule.entity, rule.params, self._pseudonymizer, binner)
            self._column_ops[col] = (rule.entity, op)
        self._scan_all = pol.scan_columns is None
        self._scan = frozenset(pol.scan_columns or ())
        self._fitted = not pol.needs_fit
        self.reset_report()

    # -- first pass -------------------------------------------------------------------------------

    @property
    def needs_fit(self) -> bool:
        return self.policy.needs_fit

    def fit(self, rows: Iterable[Row]) -> Desensitizer:
        """First pass: count values per bin and merge bins smaller than ``min_bin_size``."""
        binners = [(c, b) for c, b in self._binners.items() if b.min_bin_size]
        for _, b in binners:
            b.counts = [0] * len(b.counts)
        if binners:
            for row in rows:
                for col, b in binners:
                    if col in row:
                        _observe(b, row[col])
            for _, b in binners:
                b.merge()
        self._fitted = True
        return self

    # -- transform --------------------------------------------------------------------------------

    def analyze(self, text: str) -> list[Finding]:
        """The findings the policy would act on in ``text``."""
        return self.analyzer.analyze(text)

    def transform_row(self, row: Row) -> dict[str, Any]:
        """A desensitized copy of ``row`` (the input is never modified; unchanged nested
        containers may be shared with it). Updates the report counters."""
        if not self._fitted:
            raise RuntimeError("the policy bins with min_bin_size: call fit(rows) first")
        out, changed = self._transform(row, self._entity_counts, self._column_counts)
        self._rows += 1
        if changed:
            self._rows_changed += 1
            if len(self._samples) < self.sample_size:
                sample = {"before": copy.deepcopy(dict(row)), "after": copy.deepcopy(out)}
                self._samples.append(sample)
        return out

    def transform(self, rows: Iterable[Row]) -> Iterator[dict[str, Any]]:
        for row in rows:
            yield self.transform_row(row)

    def preview(self, rows: Iterable[Row], n: int = 5) -> list[dict[str, Any]]:
        """Before/after for the first ``n`` rows, leaving the report untouched. Contains RAW
        data (see the class docstring). Before :meth:`fit`, bins are not yet merged."""
        out = []
        for row in itertools.islice(rows, n):
            after, _ = self._transform(row, defaultdict(int), defaultdict(int))
            out.append({"before": copy.deepcopy(dict(row)), "after": copy.deepcopy(after)})
        return out

    def _transform(
        self, row: Row, ecounts: defaultdict[str, int], ccounts: defaultdict[str, int]
    ) -> tuple[dict[str, Any], int]:
        out = dict(row)
        total = 0
        column_ops = self._column_ops
        scan_all, scan = self._scan_all, self._scan
        for col, value in row.items():
            rule = column_ops.get(col)
            if rule is not None:
                entity, fn = rule
                new, k = _apply(value, fn)
                if k:
                    ecounts[entity] += k
            elif scan_all or col in scan:
                if type(value) is str:  # the common case, without the recursion
                    new, k = self._scan_text(value, ecounts)
                else:
                    new, k = self._scan_value(value, ecounts)
            else:
                continue
            if k:
                out[col] = new
                ccounts[col] += k
                total += k
        return out, total

    def _scan_text(self, text: str, ecounts: defaultdict[str, int]) -> tuple[str, int]:
        findings = self.analyzer.analyze(text)
        if not findings:
            return text, 0
        ops = self._entity_ops
        parts = []
        last = 0
        for f in findings:
            parts.append(text[last : f.start])
            parts.append(ops[f.entity](f.text))
            last = f.end
            ecounts[f.entity] += 1
        parts.append(text[last:])
        return "".join(parts), len(findings)

    def _scan_value(self, value: Any, ecounts: defaultdict[str, int]) -> tuple[Any, int]:
        t = type(value)
        if t is str:
            return self._scan_text(value, ecounts)
        if t is list or t is tuple:
            total = 0
            items = []
            for item in value:
                new, k = self._scan_value(item, ecounts)
                items.append(new)
                total += k
            return (t(items) if total else value), total
        if t is dict:
            total = 0
            d = {}
            for key, item in value.items():
                d[key], k = self._scan_value(item, ecounts)
                total += k
            return (d if total else value), total
        return value, 0

    # -- report -----------------------------------------------------------------------------------

    def reset_report(self) -> None:
        self._rows = 0
        self._rows_changed = 0
        self._entity_counts: defaultdict[str, int] = defaultdict(int)
        self._column_counts: defaultdict[str, int] = defaultdict(int)
        self._samples: list[dict[str, Any]] = []

    def report(self) -> dict[str, Any]:
        """Counts since construction (or :meth:`reset_report`)::

        {"rows_processed": 1000, "rows_changed": 412,
         "entities": {"PHONE": 300, ...},      # replacements per entity
         "columns": {"text": 350, ...},        # replacements per column
         "bins": {"amount": [{"label", "low", "high", "count"}, ...]},
         "samples": [{"before": {...}, "after": {...}}, ...]}   # RAW data: view_raw only
        """
        by_count = sorted(self._entity_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "rows_processed": self._rows,
            "rows_changed": self._rows_changed,
            "entities": dict(by_count),
            "columns": dict(self._column_counts),
            "bins": {col: b.summary() for col, b in self._binners.items()},
            "samples": list(self._samples),
        }


def _apply(value: Any, fn: OperatorFn) -> tuple[Any, int]:
    """A column rule on every leaf; None and bools are left alone."""
    t = type(value)
    if value is None or t is bool:
        return value, 0
    if t is list or t is tuple:
        total = 0
        items = []
        for item in value:
            new, k = _apply(item, fn)
            items.append(new)
            total += k
        return (t(items) if total else value), total
    if t is dict:
        total = 0
        d = {}
        for key, item in value.items():
            d[key], k = _apply(item, fn)
            total += k
        return (d if total else value), total
    new = fn(value)
    if type(new) is t and new == value:
        return value, 0
    return new, 1


def _observe(binner: Binner, value: Any) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            _observe(binner, item)
    elif isinstance(value, dict):
        for item in value.values():
            _observe(binner, item)
    else:
        binner.observe(value)


def desensitize_rows(
    rows: Iterable[Row],
    policy: Policy | Mapping[str, Any],
    key: bytes,
    progress: Callable[[int], None] | None = None,
    *,
    sample_size: int = 20,
    fit_rows: Iterable[Row] | None = None,
    report: dict[str, Any] | None = None,
    progress_every: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Yield desensitized rows. ``progress(done_rows)`` is called every ``progress_every`` rows
    and at the end; ``report``, if given, is filled with :meth:`Desensitizer.report` once the
    rows are exhausted. A policy with ``min_bin_size`` needs two passes: ``rows`` must then be
    re-iterable (a list, or an object whose ``__iter__`` starts over), or pass ``fit_rows``."""
    d = Desensitizer(policy, key, sample_size)
    if d.needs_fit:
        if fit_rows is None:
            if iter(rows) is rows:
                raise ValueError(
                    "this policy merges small bins (min_bin_size) and needs two passes over the "
                    "rows: pass a re-iterable collection, or the same rows again as fit_rows"
                )
            fit_rows = rows
        d.fit(fit_rows)
    done = 0
    for row in rows:
        yield d.transform_row(row)
        done += 1
        if progress is not None and done % progress_every == 0:
            progress(done)
    if progress is not None and (done % progress_every or done == 0):
        progress(done)  # the final count, unless it was just reported
    if report is not None:
        report.update(d.report())
