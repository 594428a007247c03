"""datasets_app.formats: sniffing, readers, schema inference and normalisation to JSON Lines.

Every fixture file is built here in tmp_path; no database is used.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import random
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_app.formats import (
    IngestError,
    RowError,
    SchemaBuilder,
    approx_tokens,
    iter_jsonl,
    iter_records,
    normalize,
    sniff,
    write_jsonl,
)

RECORDS = [
    {"instruction": "解释高血压", "input": "", "output": "高血压是血压持续升高的疾病。"},
    {"instruction": "Translate", "input": "糖尿病", "output": "diabetes", "score": 0.5},
    {"instruction": "数一数", "input": "一二三", "output": "3", "tags": ["a", "b"], "n": 7},
]


def put(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def ingest(path: Path, name: str | None = None, **kwargs):
    out = io.BytesIO()
    result = normalize(path, name or path.name, out, **kwargs)
    out.seek(0)
    return result, list(iter_jsonl(out))


def jsonl(rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def refused(path: Path, name: str | None = None) -> IngestError:
    with pytest.raises(IngestError) as caught:
        normalize(path, name or path.name, io.BytesIO())
    return caught.value


def column(result, name: str) -> dict:
    return next(c for c in result.schema["columns"] if c["name"] == name)


# -- formats and encodings -------------------------------------------------------------------------
def test_jsonl_round_trip(tmp_path):
    result, rows = ingest(put(tmp_path, "data.jsonl", jsonl(RECORDS)))
    assert (result.format, result.encoding, result.row_count, result.error_count) == (
        "jsonl",
        "utf-8",
        3,
        0,
    )
    assert rows == RECORDS
    assert result.schema["shape"] == "alpaca"
    assert [c["name"] for c in result.schema["columns"]] == [
        "instruction",
        "input",
        "output",
        "score",
        "tags",
        "n",
    ]


def test_output_is_utf8_jsonl_in_column_order(tmp_path):
    path = put(tmp_path, "d.jsonl", '{"a": "甲", "b": 1}\n{"b": 2, "c": 3, "a": "乙"}\n')
    out = io.BytesIO()
    normalize(path, "d.jsonl", out)
    assert out.getvalue().decode("utf-8").splitlines() == [
        '{"a": "甲", "b": 1}',
        '{"a": "乙", "b": 2, "c": 3}',
    ]


def test_json_array_round_trip_and_non_object_items(tmp_path):
    data = json.dumps([*RECORDS, "stray", {"big": 123456789012345678901234567890}])
    result, rows = ingest(put(tmp_path, "data.json", data))
    assert result.format == "json"
    assert rows == [*RECORDS, {"big": 123456789012345678901234567890}]
    assert result.errors == [{"line": 4, "message": "item 4 is a string, not a JSON object {…}"}]


def test_json_array_in_gb18030(tmp_path):
    path = put(tmp_path, "data.json", json.dumps(RECORDS, ensure_ascii=False).encode("gb18030"))
    result, rows = ingest(path)
    assert (result.format, result.encoding, rows) == ("json", "gb18030", RECORDS)


def test_csv_utf8_values_stay_strings(tmp_path):
    path = put(tmp_path, "d.csv", "id,name,score\n001,张三,1.5\n002,李四,2\n")
    result, rows = ingest(path)
    assert (result.format, result.encoding) == ("csv", "utf-8")
    assert rows == [
        {"id": "001", "name": "张三", "score": "1.5"},
        {"id": "002", "name": "李四", "score": "2"},
    ]
    assert column(result, "id")["type"] == "string"  # leading zeros: an identifier
    assert column(result, "score")["type"] == "float"


def test_csv_utf8_bom(tmp_path):
    path = put(tmp_path, "d.csv", "\ufeffname,note\nA,b\n".encode())
    sniffed = sniff(path, "d.csv")
    assert (sniffed.format, sniffed.encoding, sniffed.has_bom) == ("csv", "utf-8", True)
    _, rows = ingest(path)
    assert rows == [{"name": "A", "note": "b"}]  # no BOM glued to the first column name


def test_csv_gbk(tmp_path):
    path = put(tmp_path, "export.csv", "患者姓名,诊断\n张三,高血压\n".encode("gbk"))
    result, rows = ingest(path)
    assert (result.format, result.encoding) == ("csv", "gb18030")
    assert rows == [{"患者姓名": "张三", "诊断": "高血压"}]


def test_csv_gb18030_only_characters(tmp_path):
    text = "姓名,备注\n𠮷野家,😀 好\n"
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")  # these characters exist only in GB18030
    result, rows = ingest(put(tmp_path, "d.csv", text.encode("gb18030")))
    assert result.encoding == "gb18030"
    assert rows == [{"姓名": "𠮷野家", "备注": "😀 好"}]


def test_gbk_multibyte_characters_across_scan_blocks(tmp_path):
    # Long enough that 2-byte characters straddle the sniffer's block boundaries.
    text = "文本\n" + "".join(f"第{i}行：高血压患者的随访记录\n" for i in range(40_000))
    result, rows = ingest(put(tmp_path, "notes.csv", text.encode("gbk")))
    assert (result.encoding, result.row_count) == ("gb18030", 40_000)
    assert rows[-1] == {"文本": "第39999行：高血压患者的随访记录"}


def test_tsv_and_utf16_unicode_text(tmp_path):
    result, rows = ingest(put(tmp_path, "d.tsv", "问题\t答案\n什么是高血压？\t血压升高\n"))
    assert result.format == "tsv"
    assert rows == [{"问题": "什么是高血压？", "答案": "血压升高"}]
    assert result.schema["shape"] == "prompt_completion"
    # Excel's "Unicode text": UTF-16 LE with BOM, tab-separated, named .txt.
    data = "\ufeffq\ta\n问\t答\n".encode("utf-16-le")
    result, rows = ingest(put(tmp_path, "export.txt", data))
    assert (result.format, result.encoding) == ("tsv", "utf-16-le")
    assert rows == [{"q": "问", "a": "答"}]


def test_parquet(tmp_path):
    table = pa.table(
        {
            "prompt": ["你好", "hi"],
            "completion": ["您好", None],
            "when": [dt.datetime(2024, 3, 5, 14, 30), None],
            "amount": pa.array([decimal.Decimal("12.50"), None], pa.decimal128(10, 2)),
            "ratio": [float("nan"), 0.25],
        }
    )
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    result, rows = ingest(path, "upload.bin")  # content decides, not the name
    assert (result.format, result.row_count) == ("parquet", 2)
    assert rows == [
        {
            "prompt": "你好",
            "completion": "您好",
            "when": "2024-03-05T14:30:00",
            "amount": 12.5,
            "ratio": None,
        },
        {"prompt": "hi", "completion": None, "when": None, "amount": None, "ratio": 0.25},
    ]
    assert result.schema["shape"] == "prompt_completion"


def test_text_one_record_per_non_blank_line(tmp_path):
    path = put(tmp_path, "corpus.txt", "第一行, 有逗号\n\n  second line\r\nthird\n")
    result, rows = ingest(path)
    assert result.format == "text"
    assert rows == [{"text": "第一行, 有逗号"}, {"text": "  second line"}, {"text": "third"}]
    lines = [line for line, _ in iter_records(path, sniff(path, "corpus.txt"))]
    assert lines == [1, 3, 4]
    assert result.schema["shape"] == "text"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.jsonl", '{"a": 1}\n', "jsonl"),
        ("a.json", '{"a": 1}\n{"a": 2}\n', "jsonl"),  # content wins over the name
        ("a.jsonl", '  \n[{"a": 1}]', "json"),
        ("a", "x,y\n1,2\n", "csv"),
        ("a.csv", "x\n1\n", "csv"),  # one column: only the name says CSV
        ("a", "x\ty\n1\t2\n", "tsv"),
        ("a.txt", "Hello, world.\nSecond line\n", "text"),
        ("a", "[INFO] started\n[INFO] done\n", "text"),
        ("a.txt", "{name} is a template\n", "text"),
    ],
)
def test_sniff_formats(tmp_path, name, data, expected):
    assert sniff(put(tmp_path, "f", data), name).format == expected


# -- shapes ----------------------------------------------------------------------------------------
def shape_of(rows, typed_strings=False):
    builder = SchemaBuilder(typed_strings=typed_strings)
    for row in rows:
        builder.add(row)
    result = builder.result()
    return result["shape"], result["shape_columns"]


@pytest.mark.parametrize(
    ("rows", "shape", "columns"),
    [
        (
            [{"instruction": "i", "input": "x", "output": "o"}],
            "alpaca",
            {"instruction": "instruction", "input": "input", "output": "output"},
        ),
        (
            [{"Instruction": "i", "Output": "o"}],
            "alpaca",
            {"instruction": "Instruction", "output": "Output"},
        ),
        (
            [{"指令": "翻译", "输入": "你好", "输出": "hello"}],
            "alpaca",
            {"instruction": "指令", "input": "输入", "output": "输出"},
        ),
        (
            [
                {
                    "messages": [
                        {"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "yo"},
                    ]
                }
            ],
            "chat",
            {"messages": "messages"},
        ),
        (
            [{"conversations": [{"from": "human", "value": "问"}, {"from": "gpt", "value": "答"}]}],
            "chat",
            {"messages": "conversations"},
        ),
        (
            [{"prompt": "p", "completion": "c"}],
            "prompt_completion",
            {"prompt": "prompt", "completion": "completion"},
        ),
        (
            [{"question": "q", "answer": "a"}],
            "prompt_completion",
            {"prompt": "question", "completion": "answer"},
        ),
        (
            [{"问题": "q", "答案": "a"}],
            "prompt_completion",
            {"prompt": "问题", "completion": "答案"},
        ),
        ([{"text": "hello", "id": 1}], "text", {"text": "text"}),
        ([{"body": "hello"}], "text", {"text": "body"}),
        ([{"age": 3, "name": "x"}], "table", {}),
        ([{"messages": "not a list", "n": 1}], "table", {}),
    ],
)
def test_shapes(rows, shape, columns):
    assert shape_of(rows) == (shape, columns)


def test_chinese_alpaca_csv_end_to_end(tmp_path):
    path = put(tmp_path, "sft.csv", "指令,输入,输出\n翻译,你好,hello\n".encode("gbk"))
    result, _ = ingest(path)
    assert result.schema["shape"] == "alpaca"
    assert result.schema["shape_columns"] == {
        "instruction": "指令",
        "input": "输入",
        "output": "输出",
    }


# -- row errors ------------------------------------------------------------------------------------
def test_malformed_jsonl_lines_first_100_and_total(tmp_path):
    lines, bad_lines = [], []
    for i in range(500):
        if i % 2:
            lines.append('{"broken": ')
            bad_lines.append(len(lines))
        else:
            lines.append(json.dumps({"i": i}))
        if i == 10:
            lines.append("")  # a blank line is skipped but still counts as a line
    lines.append("[1, 2]")
    path = put(tmp_path, "d.jsonl", "\n".join(lines) + "\n")
    result, rows = ingest(path)
    assert result.row_count == 250 == len(rows)
    assert result.error_count == 251
    assert len(result.errors) == 100
    assert [e["line"] for e in result.errors] == bad_lines[:100]
    assert result.errors[0]["message"].startswith("invalid JSON")
    result = normalize(path, "d.jsonl", io.BytesIO(), max_errors=5)
    assert (len(result.errors), result.error_count) == (5, 251)


def test_jsonl_non_object_line_and_nan(tmp_path):
    path = put(tmp_path, "d.jsonl", '{"a": NaN}\n"just a string"\n{"a": 1}\n')
    result, rows = ingest(path)
    assert rows == [{"a": None}, {"a": 1}]
    assert result.errors == [{"line": 2, "message": "expected a JSON object {…}, found a string"}]


def test_csv_wrong_field_counts_report_physical_lines(tmp_path):
    data = (
        "a,b,c\n"
        '1,"two\nlines",3\n'  # lines 2-3, one record
        "4,5\n"  # line 4: too few
        "\n"
        "6,7,8,9\n"  # line 6: too many
        "10,11,12,,\n"  # line 7: trailing empty cells are tolerated
        "13,14,15\n"
    )
    result, rows = ingest(put(tmp_path, "d.csv", data))
    assert rows == [
        {"a": "1", "b": "two\nlines", "c": "3"},
        {"a": "10", "b": "11", "c": "12"},
        {"a": "13", "b": "14", "c": "15"},
    ]
    assert result.errors == [
        {"line": 4, "message": "expected 3 fields (as in the header), found 2"},
        {"line": 6, "message": "expected 3 fields (as in the header), found 4"},
    ]


def test_csv_duplicate_and_empty_header_names(tmp_path):
    _, rows = ingest(put(tmp_path, "d.csv", "name, ,name,name_2\na,b,c,d\n"))
    assert rows == [{"name": "a", "column_2": "b", "name_3": "c", "name_2": "d"}]


def test_no_valid_rows(tmp_path):
    error = refused(put(tmp_path, "d.csv", "a,b\n\n1\n2\n"))
    assert (error.code, error.line) == ("no_rows", 3)
    assert error.message.startswith("No valid rows: first error at line 3: expected 2 fields")
    assert refused(put(tmp_path, "h.csv", "a,b\n")).code == "no_rows"
    assert refused(put(tmp_path, "e.json", "[]")).code == "no_rows"


def test_max_error_ratio(tmp_path):
    path = put(tmp_path, "d.jsonl", '{"a": 1}\nbad\nbad\n')
    assert normalize(path, "d.jsonl", io.BytesIO(), max_error_ratio=0.7).error_count == 2
    with pytest.raises(IngestError) as caught:
        normalize(path, "d.jsonl", io.BytesIO(), max_error_ratio=0.5)
    assert caught.value.code == "too_many_errors"


# -- refused files ---------------------------------------------------------------------------------
def test_refused_files(tmp_path):
    rng = random.Random(7)
    cases = {
        "empty.csv": (b"", "empty"),
        "blank.jsonl": (b"  \n\t\r\n  ", "empty"),
        "bom-only.csv": (b"\xef\xbb\xbf\n", "empty"),
        "random.bin": (bytes(rng.randrange(256) for _ in range(4096)) + b"\x00", "binary"),
        "sheet.csv": (b"PK\x03\x04\x14\x00" + b"\x00" * 24 + b"xl/workbook.xml", "binary"),
        "report.pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "binary"),
        "data.jsonl.gz": (b"\x1f\x8b\x08\x00" + bytes(20), "binary"),
        "photo.png": (b"\x89PNG\r\n\x1a\n" + bytes(20), "binary"),
        "broken.json": (b'[{"a": 1},\n {"a": 2}\n {"a": 3}]', "parse"),
        "pretty.jsonl": (b'{\n  "a": 1,\n  "b": 2\n}\n', "parse"),
        "cut.parquet": (b"PAR1\x15\x04garbage", "parse"),
        "bad.parquet": (b"PAR1" + b"\x15\x04garbage" * 10 + b"PAR1", "parse"),
        "bom-binary.txt": (b"\xef\xbb\xbfa\x00\x01\x02\x03b\n", "binary"),
        "named.json": (b"hello\n", "parse"),
        "invalid.csv": (b"a,b\nok,1\n\x80\xff,2\n", "encoding"),
        "utf16-no-bom.txt": ("hello world\n".encode("utf-16-le"), "encoding"),
    }
    for name, (data, code) in cases.items():
        error = refused(put(tmp_path, name, data))
        assert error.code == code, (name, error.message)
        assert error.message and not error.message.startswith(" ")


def test_zip_excel_message_says_export_as_csv(tmp_path):
    data = b"PK\x03\x04\x14\x00" + b"\x00" * 24 + b"[Content_Types].xml" + b"xl/workbook.xml"
    message = refused(put(tmp_path, "patients.xlsx", data)).message
    assert "ZIP/Excel" in message and "export it as CSV" in message
    message = refused(
        put(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(50))
    ).message
    assert "Excel" in message


def test_invalid_bytes_report_the_line(tmp_path):
    error = refused(put(tmp_path, "d.csv", b"a,b\nok,1\nfine,2\n\x80\x80,3\n"))
    assert error.code == "encoding"
    assert error.line == 4
    assert "line 4 is neither UTF-8 nor GBK/GB18030" in error.message
    # GBK text with one damaged byte: the line where GB18030 decoding stops.
    data = "名,值\n张三,一\n".encode("gbk") + b"\xff\xff,2\n"
    assert refused(put(tmp_path, "g.csv", data)).line == 3


def test_mixed_utf8_and_gbk_is_refused(tmp_path):
    data = "姓名,诊断\n张三,高血压\n".encode() + "李四,糖尿病\n".encode("gbk")
    error = refused(put(tmp_path, "mixed.csv", data))
    assert (error.code, error.line) == ("encoding", 3)
    assert "mixes text encodings" in error.message


def test_broken_json_array_reports_position(tmp_path):
    error = refused(put(tmp_path, "d.json", b'[{"a": 1},\n {"a": 2}\n {"a": 3}]'))
    assert error.code == "parse"
    assert "line 3, column 2" in error.message and "after record 2" in error.message
    assert error.line == 3
    error = refused(put(tmp_path, "t.json", b'[{"a": 1},\n {"a": 2},'))
    assert (error.code, error.line) == ("parse", 2)


def test_unclosed_csv_quote_is_a_parse_error_not_a_memory_hog(tmp_path):
    from datasets_app.formats.readers import MAX_FIELD_CHARS

    path = tmp_path / "d.csv"
    with open(path, "w") as f:
        f.write('a,b\n1,2\n3,"never closed\n')
        f.write(("x,y\n" * 1024) * (MAX_FIELD_CHARS // 4096 + 1))
    error = refused(path)
    assert (error.code, error.line) == ("parse", 3)
    assert "never closed" in error.message


# -- schema ----------------------------------------------------------------------------------------
def test_approx_tokens():
    assert approx_tokens("") == 0
    assert approx_tokens("患者姓名") == 4  # 1 per CJK character
    assert approx_tokens("hello world!") == 3  # 12 chars / 4
    assert approx_tokens("高血压 patient") == 3 + 2  # 3 CJK + ceil(8 / 4)
    assert approx_tokens("，。！") == 3  # full-width punctuation counts like CJK


def test_schema_types_and_stats():
    builder = SchemaBuilder()
    rows = [
        {"s": "高血压", "i": 1, "f": 1.5, "b": True, "l": [1], "o": {"k": 1}, "m": None},
        {"s": "hello world!", "i": 2, "f": 2, "b": False, "l": [], "o": {}, "x": "late"},
        {"s": None, "i": "three", "f": 3.0},
    ]
    for row in rows:
        builder.add(row)
    result = builder.result()
    assert result["row_count"] == 3
    json.dumps(result)  # JSON-serialisable
    columns = {c["name"]: c for c in result["columns"]}
    assert list(columns) == ["s", "i", "f", "b", "l", "o", "m", "x"]
    assert columns["s"]["type"] == "string"
    assert columns["s"]["nulls"] == 1
    assert columns["s"]["chars"] == {"min": 3, "mean": 7.5, "max": 12}
    assert columns["s"]["approx_tokens"] == {"min": 3, "mean": 3.0, "max": 3, "total": 6}
    assert columns["i"]["type"] == "mixed"
    assert columns["i"]["types"] == {"integer": 2, "string": 1}
    assert columns["f"]["type"] == "float"  # integer + float
    assert columns["b"]["type"] == "boolean"
    assert columns["b"]["types"] == {"boolean": 2, "null": 1}  # missing in row 3
    assert columns["l"]["type"] == "list"
    assert columns["o"]["type"] == "object"
    assert columns["m"]["type"] == "null" and columns["m"]["nulls"] == 3
    assert columns["m"]["chars"] is None and columns["m"]["approx_tokens"] is None
    assert columns["x"]["types"] == {"null": 2, "string": 1}


def test_schema_messages_type_and_tokens():
    builder = SchemaBuilder()
    builder.add(
        {"messages": [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "hi"}]}
    )
    builder.add({"messages": []})
    result = builder.result()
    messages = result["columns"][0]
    assert messages["type"] == "messages"
    assert messages["approx_tokens"]["max"] == 2 + 1
    assert result["shape"] == "chat"


def test_csv_schema_types_numbers_but_keeps_strings(tmp_path):
    path = put(
        tmp_path, "d.csv", "n,x,phone,mix,empty\n1,1.5,0138,1,\n-20,2e3,0139,a,\n,3,0137,2,\n"
    )
    result, rows = ingest(path)
    assert rows[0] == {"n": "1", "x": "1.5", "phone": "0138", "mix": "1", "empty": ""}
    types = {c["name"]: c["type"] for c in result.schema["columns"]}
    assert types == {
        "n": "integer",
        "x": "float",
        "phone": "string",
        "mix": "string",
        "empty": "null",
    }
    assert column(result, "n")["nulls"] == 1


def test_schema_chinese_token_estimate_end_to_end(tmp_path):
    path = put(tmp_path, "d.jsonl", jsonl([{"text": "患者主诉头痛三天"}, {"text": "头痛"}]))
    result, _ = ingest(path)
    text = column(result, "text")
    assert text["chars"] == {"min": 2, "mean": 5.0, "max": 8}
    assert text["approx_tokens"] == {"min": 2, "mean": 5.0, "max": 8, "total": 10}


# -- helpers, progress, memory ---------------------------------------------------------------------
def test_write_and_iter_jsonl_round_trip():
    big = {"text": "长" * 1_500_000}  # longer than one read chunk
    records = [*RECORDS, big, {"emoji": "😀", "nested": {"a": [1, None, True]}}]
    out = io.BytesIO()
    assert write_jsonl(records, out) == len(records)
    out.seek(0)
    assert list(iter_jsonl(out)) == records
    assert list(iter_jsonl(io.BytesIO(b'{"a": 1}'))) == [{"a": 1}]  # no final newline
    with pytest.raises(IngestError):
        list(iter_jsonl(io.BytesIO(b'{"a": 1}\n{oops\n')))


def test_iter_records_yields_row_errors(tmp_path):
    path = put(tmp_path, "d.jsonl", '{"a": 1}\nbad\n')
    items = list(iter_records(path, sniff(path, "d.jsonl")))
    assert items[0] == (1, {"a": 1})
    assert items[1][0] == 2 and isinstance(items[1][1], RowError)


def test_progress_reaches_the_end(tmp_path):
    path = put(tmp_path, "d.jsonl", jsonl(RECORDS))
    calls = []
    normalize(
        path, "d.jsonl", io.BytesIO(), progress=lambda done, total: calls.append((done, total))
    )
    size = path.stat().st_size
    assert calls[-1] == (size, size)


def test_streaming_keeps_memory_far_below_file_size(tmp_path):
    path = tmp_path / "big.jsonl"
    # Long records: the size matters here, not the record count (tracemalloc slows every one).
    line = {
        "instruction": "请总结这位患者的病历。" * 8,
        "input": "病历" * 800,
        "output": "好的" * 60,
    }
    with open(path, "w", encoding="utf-8") as f:
        for i in range(6_000):
            line["id"] = i
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    size = path.stat().st_size
    assert size > 30 * 1024 * 1024
    with open(tmp_path / "out.jsonl", "wb") as out:
        tracemalloc.start()
        try:
            result = normalize(path, "big.jsonl", out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.row_count == 6_000
    assert peak < 10 * 1024 * 1024, f"peak {peak:,} bytes for a {size:,}-byte file"
