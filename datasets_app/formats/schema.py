"""Infer a dataset's columns, their types and text statistics, and its fine-tuning shape.

`SchemaBuilder` is fed one record at a time (constant memory per column) and `result()` gives a
JSON-serialisable dict:

    {"columns": [{"name", "type", "types": {type: count}, "nulls",
                  "chars": {"min", "mean", "max"} | None,
                  "approx_tokens": {"min", "mean", "max", "total"} | None}, ...],
     "row_count", "shape", "shape_columns": {role: column name}}

Types of single values: string, integer, float, boolean, null, list, object, and messages (a
non-empty list of chat turns: {"role", "content"} dicts, or ShareGPT {"from", "value"} dicts).
`types` counts every row, a row lacking the column counting as null, so sum(types) == row_count
and nulls == types["null"]. A column's `type` is its one non-null type; integer+float gives
float; messages+empty lists gives messages; any other mix gives "mixed"; all null gives "null".

CSV/TSV (`typed_strings=True`): values are strings; a column whose non-empty values all look
like integers (no leading zeros: "007" and phone/ID numbers stay strings) or decimals is
reported as integer/float; values themselves are kept as given. An empty string counts as null.

`chars` / `approx_tokens` cover string values (messages: the sum of their turns' contents),
None when a column has none. The token count is a heuristic, no tokenizer is loaded: each CJK
character (Han, kana, Hangul, CJK and full-width punctuation) ≈ 1 token, any other text ≈ 1
token per 4 characters, rounded up. Good enough for "will it fit in the context window".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Runs, not single characters: one match per run of CJK text is several times faster.
_CJK_RUNS = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f]+"
)
_INTEGER = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][+-]?[0-9]+)?")

SHAPES = ("alpaca", "chat", "prompt_completion", "text", "table")

# Column-name aliases per role, compared case-insensitively after stripping.
_ALIASES: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction", "指令"),
    "input": ("input", "context", "输入"),
    "output": ("output", "response", "输出"),
    "system": ("system", "system_prompt", "系统提示"),
    "prompt": ("prompt", "question", "query", "问题", "提问"),
    "completion": ("completion", "answer", "response", "答案", "回答"),
    "messages": ("messages",),
    "conversations": ("conversations", "conversation"),
    "text": ("text", "content", "文本", "内容"),
}
_CONTAINERS = {"list", "object", "messages"}


def approx_tokens(text: str) -> int:
    """≈ tokens: 1 per CJK character + 1 per 4 other characters (see the module docstring)."""
    if text.isascii():
        return (len(text) + 3) // 4
    cjk = sum(map(len, _CJK_RUNS.findall(text)))
    return cjk + (len(text) - cjk + 3) // 4


def _is_turn(item: Any) -> bool:
    return isinstance(item, dict) and (
        ("role" in item and "content" in item) or ("from" in item and "value" in item)
    )


def value_type(value: Any, *, typed_strings: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        if typed_strings:
            if not value:
                return "null"
            if _INTEGER.fullmatch(value):
                return "integer"
            if _FLOAT.fullmatch(value):
                return "float"
        return "string"
    if isinstance(value, list | tuple):
        return "messages" if value and all(map(_is_turn, value)) else "list"
    if isinstance(value, Mapping):
        return "object"
    return "string"


def _text_of(value: Any, kind: str) -> str | None:
    if isinstance(value, str):
        return value
    if kind == "messages":
        parts = [turn.get("content", turn.get("value")) for turn in value]
        return "".join(part for part in parts if isinstance(part, str))
    return None


class _Column:
    __slots__ = (
        "chars_max",
        "chars_min",
        "chars_total",
        "empty_lists",
        "name",
        "present",
        "texts",
        "tokens_max",
        "tokens_min",
        "tokens_total",
        "types",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.types: dict[str, int] = {}
        self.present = 0
        self.empty_lists = 0
        self.texts = 0
        self.chars_min = self.chars_max = self.chars_total = 0
        self.tokens_min = self.tokens_max = self.tokens_total = 0

    def add(self, value: Any, typed_strings: bool) -> None:
        kind = value_type(value, typed_strings=typed_strings)
        self.present += 1
        self.types[kind] = self.types.get(kind, 0) + 1
        if kind == "list" and not value:
            self.empty_lists += 1
        text = _text_of(value, kind)
        if text is None or (typed_strings and kind == "null"):
            return
        chars, tokens = len(text), approx_tokens(text)
        if self.texts == 0:
            self.chars_min = self.chars_max = chars
            self.tokens_min = self.tokens_max = tokens
        else:
            self.chars_min = min(self.chars_min, chars)
            self.chars_max = max(self.chars_max, chars)
            self.tokens_min = min(self.tokens_min, tokens)
            self.tokens_max = max(self.tokens_max, tokens)
        self.texts += 1
        self.chars_total += chars
        self.tokens_total += tokens

    def type(self, typed_strings: bool) -> str:
        kinds = {kind for kind, count in self.types.items() if count and kind != "null"}
        if not kinds:
            return "null"
        if len(kinds) == 1:
            return kinds.pop()
        if kinds <= {"integer", "float"}:
            return "float"
        if kinds == {"messages", "list"} and self.types["list"] == self.empty_lists:
            return "messages"
        if typed_strings and "string" in kinds:
            return "string"  # CSV: some values are not numbers, so the column is text
        return "mixed"

    def result(self, row_count: int, typed_strings: bool) -> dict[str, Any]:
        types = dict(self.types)
        missing = row_count - self.present
        if missing:
            types["null"] = types.get("null", 0) + missing
        types = dict(sorted(types.items(), key=lambda item: (-item[1], item[0])))
        chars = tokens = None
        if self.texts:
            chars = {
                "min": self.chars_min,
                "mean": round(self.chars_total / self.texts, 1),
                "max": self.chars_max,
            }
            tokens = {
                "min": self.tokens_min,
                "mean": round(self.tokens_total / self.texts, 1),
                "max": self.tokens_max,
                "total": self.tokens_total,
            }
        return {
            "name": self.name,
            "type": self.type(typed_strings),
            "types": types,
            "nulls": types.get("null", 0),
            "chars": chars,
            "approx_tokens": tokens,
        }


class SchemaBuilder:
    """Feed records with add(); result() any time (typically at the end)."""

    def __init__(self, *, typed_strings: bool = False) -> None:
        self.typed_strings = typed_strings
        self.row_count = 0
        self._columns: dict[str, _Column] = {}  # first-seen order
        self._position: dict[str, int] = {}  # column -> index, rebuilt when columns are added

    @property
    def column_names(self) -> list[str]:
        return list(self._columns)

    def add(self, record: Mapping[str, Any]) -> None:
        self.row_count += 1
        columns = self._columns
        for name, value in record.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = _Column(name)
            column.add(value, self.typed_strings)

    def ordered(self, record: dict[str, Any]) -> dict[str, Any]:
        """`record` with its keys in column order (keys not seen yet last, in their own order);
        the same object when it is already in order, the common case. Does not add columns."""
        if not self._out_of_order(record):
            return record
        if len(self._position) != len(self._columns):
            self._position = {name: i for i, name in enumerate(self._columns)}
        position, end = self._position, len(self._position)
        return {key: record[key] for key in sorted(record, key=lambda k: position.get(k, end))}

    def _out_of_order(self, record: Mapping[str, Any]) -> bool:
        # In order iff the known keys come in column order and new keys only after them.
        columns = self._columns
        names = iter(columns)
        new_key_seen = False
        for key in record:
            if key not in columns:
                new_key_seen = True
                continue
            if new_key_seen:
                return True
            for name in names:
                if name == key:
                    break
            else:
                return True
        return False

    def result(self) -> dict[str, Any]:
        columns = [
            column.result(self.row_count, self.typed_strings) for column in self._columns.values()
        ]
        shape, shape_columns = detect_shape(columns)
        return {
            "columns": columns,
            "row_count": self.row_count,
            "shape": shape,
            "shape_columns": shape_columns,
        }


def detect_shape(columns: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """(shape, {role: column name}) from result() column dicts (name + type)."""
    by_name: dict[str, dict[str, Any]] = {}
    for column in columns:
        by_name.setdefault(str(column["name"]).strip().lower(), column)

    def find(role: str, *, scalar: bool = True, kinds: set[str] | None = None) -> str | None:
        for alias in _ALIASES[role]:
            column = by_name.get(alias)
            if column is None:
                continue
            if kinds is not None and column["type"] not in kinds:
                continue
            if scalar and column["type"] in _CONTAINERS:
                continue
            return column["name"]
        return None

    def with_system(found: dict[str, str]) -> dict[str, str]:
        system = find("system")
        return {**found, "system": system} if system else found

    messages = find("messages", scalar=False, kinds={"messages"}) or find(
        "conversations", scalar=False, kinds={"messages"}
    )
    if messages:
        return "chat", with_system({"messages": messages})
    instruction, output = find("instruction"), find("output")
    if instruction and output:
        found = {"instruction": instruction}
        if source := find("input"):
            found["input"] = source
        found["output"] = output
        return "alpaca", with_system(found)
    prompt, completion = find("prompt"), find("completion")
    if prompt and completion and prompt != completion:
        return "prompt_completion", with_system({"prompt": prompt, "completion": completion})
    text = find("text", kinds={"string"})
    if text:
        return "text", {"text": text}
    strings = [column for column in columns if column["type"] == "string"]
    if len(columns) == 1 and strings:
        return "text", {"text": strings[0]["name"]}
    return "table", {}
