"""Text augmentation (datasets_app.augment): pure Python + jieba, no database."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from datasets_app.augment import (
    AugmentConfig,
    AugmentConfigError,
    AugmentReport,
    augment_rows,
    context_extend,
    load_synonyms,
    random_delete,
    random_insert,
    random_swap,
    synonym_replace,
    truncate_splice,
)
from datasets_app.augment.ops import CONTEXT_TEMPLATES
from datasets_app.augment.text import WORD, split_sentences, tokenize

ROWS = [
    {
        "id": 1,
        "instruction": "患者头痛三天，伴有发热。医生建议怎么办？",
        "output": "建议及时就医，注意休息。",
        "score": 0.5,
    },
    {
        "id": 2,
        "instruction": "The customer quickly asked for a refund. The payment was overdue.",
        "output": "Approve the refund after you verify the invoice.",
        "score": None,
    },
    {
        "id": 3,
        "instruction": "设备出现故障，工人需要立即停机维修。请说明原因。",
        "output": "先检查零件是否损坏，然后更换部件。",
        "tags": ["factory"],
    },
    {
        "id": 4,
        "instruction": "Please explain the main problem with the machine. It stopped suddenly.",
        "output": "A defect in one component caused the failure.",
    },
]

# "[DOCTOR]" and "病人**" hold listed words, so an op that looked inside them would change them.
PLACEHOLDERS = [
    "[ID_CARD]",
    "[PERSON:9f3a2c1d7b]",
    "110105********002X",
    "138****5678",
    "[DOCTOR]",
    "病人**",
]
PLACEHOLDER_TEXTS = [
    "患者[PERSON:9f3a2c1d7b]今天去医院看医生，身份证号[ID_CARD]，电话138****5678。"
    "病人的身份证110105********002X已核实！医生[PERSON:9f3a2c1d7b]建议复查；大夫同意，病人**，[DOCTOR]。",
    "The patient [PERSON:9f3a2c1d7b] quickly called the doctor from 138****5678. "
    "ID [ID_CARD] and 110105********002X were verified! The physician [DOCTOR] agreed; "
    "the customer [ID_CARD] asked again?",
    "[ID_CARD][PERSON:9f3a2c1d7b]138****5678 患者 doctor 110105********002X，病人[ID_CARD]。"
    "Call 138****5678. 医生同意[PERSON:9f3a2c1d7b]。病人**！[DOCTOR] quickly agreed.",
]


def rng(seed: int = 0) -> random.Random:
    return random.Random(seed)


def synonym_pattern(text: str) -> re.Pattern[str]:
    """A regex accepting ``text`` with any of its tokens replaced by a listed synonym."""
    parts = []
    for token in tokenize(text):
        options = [token.text]
        if token.kind == WORD:
            table = load_synonyms("zh" if re.search(r"[\u4e00-\u9fff]", token.text) else "en")
            options += table.get(token.text.lower() if token.text.isascii() else token.text, ())
        parts.append("(?:" + "|".join(re.escape(o) for o in options) + ")")
    return re.compile("".join(parts), re.IGNORECASE)


# ---- synonym lists -------------------------------------------------------------------------


def test_bundled_synonym_lists_are_sizeable_and_loaded_once():
    zh, en = load_synonyms("zh"), load_synonyms("en")
    assert len(zh) > 500 and len(en) > 500
    assert "病人" in zh["患者"] and "病患" in zh["患者"]
    assert "大夫" in zh["医生"] and "医师" in zh["医生"]
    assert "physician" in en["doctor"] and "rapidly" in en["quickly"]
    assert load_synonyms("zh") is zh  # cached


# ---- synonym replacement ----------------------------------------------------------------------


def test_chinese_synonym_replacement_uses_bundled_list_via_jieba_tokens():
    text = "患者今天去医院看医生"
    # jieba cuts the sentence into words; the listed ones are the replacement candidates.
    assert {"患者", "医生"} <= {t.text for t in tokenize(text)}
    out = synonym_replace(text, rng(1), n=10)
    assert out != text
    assert synonym_pattern(text).fullmatch(out)
    # One word at most, and it becomes a listed synonym.
    single = synonym_replace("患者", rng(2), n=1)
    assert single in load_synonyms("zh")["患者"]


def test_synonym_replace_respects_n():
    text = "患者 医生 增加 迅速 困难"
    for seed in range(20):
        out = synonym_replace(text, rng(seed), n=2)
        changed = sum(a != b for a, b in zip(text.split(), out.split(), strict=True))
        assert changed <= 2


def test_english_synonym_replacement_keeps_case_and_punctuation():
    text = "Quickly, the doctor examined the customer."
    out = synonym_replace(text, rng(3), n=10)
    assert out != text
    assert synonym_pattern(text).fullmatch(out)
    assert out.endswith(".") and out[0].isupper() and ", the " in out
    first = out.split(",")[0]
    assert first.lower() in load_synonyms("en")["quickly"]


def test_text_without_listed_words_is_unchanged():
    assert synonym_replace("zzz qqq 12345", rng(), n=3) == "zzz qqq 12345"


# ---- EDA ------------------------------------------------------------------------------------


def test_random_swap_moves_words_only():
    text = "The doctor quickly examined the patient, then left."
    out = random_swap(text, rng(4), n=2)
    assert out != text
    words = lambda s: Counter(t.text for t in tokenize(s) if t.kind == WORD)  # noqa: E731
    others = lambda s: [t.text for t in tokenize(s) if t.kind != WORD]  # noqa: E731
    assert words(out) == words(text) and others(out) == others(text)
    zh = "患者今天去医院看医生"
    zh_out = random_swap(zh, rng(5), n=1)
    assert sorted(zh_out) == sorted(zh) and zh_out != zh


def test_random_delete_never_deletes_everything():
    text = "The doctor quickly examined the patient."
    assert random_delete(text, rng(), p=0.0) == text
    for seed in range(30):
        out = random_delete(text, rng(seed), p=1.0)
        assert [t.kind for t in tokenize(out)].count(WORD) == 1
        assert out.endswith(".") and "  " not in out
    out = random_delete("患者今天去医院看医生。", rng(6), p=0.5)
    assert out != "患者今天去医院看医生。" and out.endswith("。") and len(out) > 1
    assert random_delete("single", rng(), p=1.0) == "single"


def test_random_insert_adds_a_synonym_of_a_word_in_the_text():
    text = "The doctor examined the patient."
    out = random_insert(text, rng(7), n=1)
    added = Counter(out.rstrip(".").split()) - Counter(text.rstrip(".").split())
    assert len(added) == 1
    assert next(iter(added)).lower() in load_synonyms("en")["doctor"]
    zh = "患者今天去医院"
    zh_out = random_insert(zh, rng(8), n=2)
    assert len(zh_out) > len(zh)
    assert random_insert("zzz qqq", rng(), n=3) == "zzz qqq"


# ---- truncate-splice ------------------------------------------------------------------------


def test_truncate_splice_cuts_and_splices_at_sentence_boundaries():
    text = "第一句话。第二句话！第三句话？第四句话；"
    other = "Alpha one. Beta two! Gamma three? Delta four; Epsilon five."
    mine, theirs = split_sentences(text), [s.strip() for s in split_sentences(other)]
    assert len(mine) == 4 and len(theirs) == 5
    seen_cuts = set()
    for seed in range(50):
        out = truncate_splice(text, rng(seed), other)
        heads = ["".join(mine[:k]) for k in range(1, len(mine))]
        head = next(h for h in heads if out.startswith(h) and out[len(h) :][:1].isascii())
        piece = out[len(head) :]
        seen_cuts.add(len(head))
        # The piece is 1-2 whole consecutive sentences of the other text.
        assert any(piece == " ".join(theirs[a:b]) for a in range(5) for b in (a + 1, a + 2))
    assert len(seen_cuts) > 1


def test_truncate_splice_english_into_english_and_single_sentence():
    out = truncate_splice("Only one sentence here", rng(), "Another one. And more.")
    assert out.startswith("Only one sentence here. ")
    assert truncate_splice("Text.", rng(), "") == "Text."
    assert split_sentences("Version 3.5 is out. Next") == ["Version 3.5 is out. ", "Next"]


# ---- context extension ----------------------------------------------------------------------


def test_context_templates_follow_the_script_of_the_text():
    zh, en = "患者头痛三天。", "The patient has had a headache for three days."
    for seed in range(20):
        out = context_extend(zh, rng(seed))
        assert zh in out and out != zh
        assert any(out == t.replace("{text}", zh) for t in CONTEXT_TEMPLATES["zh"])
        out = context_extend(en, rng(seed))
        assert en in out
        assert any(out == t.replace("{text}", en) for t in CONTEXT_TEMPLATES["en"])


def test_context_custom_templates_and_generate_callable():
    out = context_extend("Refund approved", rng(), templates=["{text} Thank you."])
    assert out == "Refund approved. Thank you."
    out = context_extend("病人发烧", rng(), templates={"zh": ["背景：{text}"]})
    assert out == "背景：病人发烧"
    prompts = []

    def fake_generate(prompt: str) -> str:
        prompts.append(prompt)
        return "建议多喝水。"

    assert (
        context_extend("病人发烧了。", rng(), generate=fake_generate) == "病人发烧了。建议多喝水。"
    )
    assert prompts == ["病人发烧了。"]
    # A continuation that echoes the prompt is not duplicated; English joins with a space.
    echo = lambda p: p + " Drink water."  # noqa: E731
    assert context_extend("Fever noted.", rng(), generate=echo) == "Fever noted. Drink water."


# ---- placeholders ---------------------------------------------------------------------------


def _assert_placeholders_intact(before: str, after: str, op: str, other: str = "") -> None:
    for p in PLACEHOLDERS:
        if op == "truncate_splice":
            # Part of the text is cut away and part of another spliced in: every occurrence
            # must still be whole, so the "*" and "[" of the output all belong to placeholders.
            assert after.count(p) <= before.count(p) + other.count(p), (op, p, after)
        else:
            assert after.count(p) == before.count(p), (op, p, before, after)
    stars = sum(after.count(p) * p.count("*") for p in PLACEHOLDERS)
    brackets = sum(after.count(p) for p in PLACEHOLDERS if p.startswith("["))
    assert after.count("*") == stars, (op, after)
    assert after.count("[") == brackets and after.count("]") == brackets, (op, after)


@pytest.mark.parametrize(
    "op", ["synonym", "swap", "delete", "insert", "truncate_splice", "context"]
)
def test_placeholders_untouched_across_500_randomised_runs(op):
    r = rng(12345)
    for run in range(500):
        text = PLACEHOLDER_TEXTS[run % len(PLACEHOLDER_TEXTS)]
        other = PLACEHOLDER_TEXTS[(run + 1) % len(PLACEHOLDER_TEXTS)]
        if op == "synonym":
            out = synonym_replace(text, r, n=r.randint(1, 10))
        elif op == "swap":
            out = random_swap(text, r, n=r.randint(1, 10))
        elif op == "delete":
            out = random_delete(text, r, p=r.random())
        elif op == "insert":
            out = random_insert(text, r, n=r.randint(1, 10))
        elif op == "truncate_splice":
            out = truncate_splice(text, r, other, max_sentences=r.randint(1, 4))
        else:
            gen = (lambda p: "继续观察。") if run % 2 else None
            out = context_extend(text, r, generate=gen)
        _assert_placeholders_intact(text, out, op, other)


def test_placeholders_survive_the_whole_engine_and_nothing_is_reverted():
    rows = [{"text": t, "messages": [{"role": "user", "content": t}]} for t in PLACEHOLDER_TEXTS]
    rows *= 10
    everything = "".join(PLACEHOLDER_TEXTS)
    report = AugmentReport()
    out = list(augment_rows(rows, {"copies": 5, "seed": 3}, report=report))
    for i, row in enumerate(out):
        source = rows[i // 6]["text"]
        _assert_placeholders_intact(source, row["text"], "truncate_splice", everything)
        content = row["messages"][0]["content"]
        _assert_placeholders_intact(source, content, "truncate_splice", everything)
    assert all(c["reverted"] == 0 for c in report.ops.values())
    # Without truncate_splice every copy keeps exactly the placeholders of its source.
    no_splice = {"copies": 5, "ops": {"synonym": {"n": 5}, "swap": {"n": 3}, "delete": {"p": 0.5}}}
    for i, row in enumerate(augment_rows(rows, no_splice)):
        _assert_placeholders_intact(rows[i // 6]["text"], row["text"], "exact")


def test_engine_reverts_an_op_that_would_break_a_placeholder(monkeypatch):
    from datasets_app.augment import ops

    monkeypatch.setattr(ops, "random_swap", lambda text, rng, n: text.replace("**", "*"))
    report = AugmentReport()
    rows = [{"text": "电话138****5678。"}]
    out = list(augment_rows(rows, {"copies": 2, "ops": {"swap": {}}}, report=report))
    assert [r["text"] for r in out] == ["电话138****5678。"] * 3
    assert report.ops["swap"]["reverted"] == 2


# ---- engine ---------------------------------------------------------------------------------


def test_same_seed_same_output_different_seed_different_output():
    config = {"copies": 3, "seed": 42}
    first = list(augment_rows(ROWS, config))
    assert first == list(augment_rows(ROWS, config))
    assert first == list(augment_rows(iter(ROWS), AugmentConfig.from_dict(config)))
    assert first != list(augment_rows(ROWS, {"copies": 3, "seed": 43}))


def test_rows_do_not_depend_on_batching():
    config = {"copies": 2, "seed": 9, "ops": {"synonym": {"n": 3}, "swap": {}, "context": {}}}
    whole = list(augment_rows(ROWS, config))
    batched = list(augment_rows(ROWS[:1], config)) + list(
        augment_rows(ROWS[1:], config, start_index=1)
    )
    assert whole == batched


def test_copies_count_keep_original_and_report():
    calls = []
    report = AugmentReport()
    out = list(
        augment_rows(ROWS, {"copies": 4}, progress=lambda i, o: calls.append((i, o)), report=report)
    )
    assert len(out) == len(ROWS) * 5
    assert out[::5] == ROWS  # each original first, unmodified
    assert calls[-1] == (4, 20) and len(calls) == 4
    summary = report.report()
    assert summary["rows_in"] == 4 and summary["rows_out"] == 20
    assert summary["augmented_rows"] == 16
    assert 0 < len(summary["samples"]) <= 10
    assert {"before", "after", "ops", "column", "row", "copy"} <= set(summary["samples"][0])
    assert sum(c["applied"] for c in summary["ops"].values()) > 0
    only_copies = list(augment_rows(ROWS, {"copies": 2, "keep_original": False}))
    assert len(only_copies) == len(ROWS) * 2


def test_non_string_values_and_unselected_columns_untouched():
    out = list(augment_rows(ROWS, {"copies": 3, "columns": ["instruction"]}))
    for i, row in enumerate(out):
        source = ROWS[i // 4]
        assert set(row) == set(source)
        for key in source:
            if key != "instruction":
                assert row[key] == source[key]
    assert any(r["instruction"] != ROWS[0]["instruction"] for r in out[1:4])


def test_sequence_applies_ops_in_order():
    config = {
        "copies": 1,
        "ops": {"synonym": {"n": 1}, "context": {"templates": ["前言。{text}"]}},
        "sequence": ["synonym", "context"],
    }
    out = list(augment_rows([{"q": "患者今天去医院"}], config))
    assert out[1]["q"].startswith("前言。") and out[1]["q"] != "前言。患者今天去医院"


def test_messages_only_user_turns_are_augmented():
    row = {
        "messages": [
            {"role": "system", "content": "你是医院的助手。"},
            {"role": "user", "content": "患者头痛发热，医生建议怎么办？"},
            {"role": "assistant", "content": "建议患者及时就医，注意休息。"},
            {"role": "user", "content": "The doctor quickly asked about the payment."},
        ]
    }
    config = {"copies": 5, "seed": 1, "ops": {"synonym": {"n": 3}, "context": {}}}
    out = list(augment_rows([row], config))
    assert out[0] == row
    for copy in out[1:]:
        msgs = copy["messages"]
        assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
        assert msgs[0] == row["messages"][0] and msgs[2] == row["messages"][2]
        assert msgs[1]["content"] != row["messages"][1]["content"]
        assert msgs[3]["content"] != row["messages"][3]["content"]
    assert row["messages"][1]["content"] == "患者头痛发热，医生建议怎么办？"  # input not mutated


def test_generate_callable_is_used_by_the_context_op():
    config = {"copies": 2, "ops": {"context": {}}, "columns": ["q"]}
    out = list(augment_rows([{"q": "病人发烧了。"}], config, generate=lambda p: "需要复查。"))
    assert [r["q"] for r in out] == [
        "病人发烧了。",
        "病人发烧了。需要复查。",
        "病人发烧了。需要复查。",
    ]


def test_truncate_splice_borrows_from_previous_rows_of_the_same_column():
    rows = [
        {"t": f"第{i}行第一句。第{i}行第二句。", "u": f"Row {i} one. Row {i} two."}
        for i in range(6)
    ]
    config = {"copies": 1, "ops": {"truncate_splice": {}}, "keep_original": False}
    out = list(augment_rows(rows, config))
    assert out[0] == rows[0]  # nothing to borrow from yet
    for i, row in enumerate(out[1:], start=1):
        assert row["t"].startswith(f"第{i}行第一句。")
        borrowed = row["t"][len(f"第{i}行第一句。") :]
        assert re.fullmatch(r"(第\d行第[一二]句。)+", borrowed)
        assert all(int(n) < i for n in re.findall(r"第(\d)行", borrowed))
        assert "第" not in row["u"] and row["u"].startswith(f"Row {i} one. Row ")


# ---- config ---------------------------------------------------------------------------------


def test_config_round_trip_and_defaults():
    data = {
        "copies": 2,
        "seed": 42,
        "columns": ["instruction", "output"],
        "ops": {
            "synonym": {"n": 2},
            "swap": {"n": 1},
            "delete": {"p": 0.1},
            "insert": {"n": 1},
            "truncate_splice": {},
            "context": {"templates": None},
        },
        "keep_original": True,
    }
    config = AugmentConfig.from_dict(data)
    dumped = config.to_dict()
    assert dumped["ops"]["truncate_splice"] == {"max_sentences": 2}
    assert AugmentConfig.from_dict(dumped) == config
    assert AugmentConfig.from_dict({}).to_dict()["copies"] == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"copies": 0}, "copies"),
        ({"copies": 21}, "copies"),
        ({"copies": True}, "copies"),
        ({"copies": "2"}, "copies"),
        ({"seed": 1.5}, "seed"),
        ({"columns": []}, "columns"),
        ({"columns": "instruction"}, "columns"),
        ({"columns": ["a", "a"]}, "columns"),
        ({"ops": {}}, "ops"),
        ({"ops": {"shuffle": {}}}, "ops.shuffle"),
        ({"ops": {"delete": {"p": 1.5}}}, "ops.delete.p"),
        ({"ops": {"delete": {"p": -0.1}}}, "ops.delete.p"),
        ({"ops": {"delete": {"p": float("nan")}}}, "ops.delete.p"),
        ({"ops": {"synonym": {"n": 0}}}, "ops.synonym.n"),
        ({"ops": {"synonym": {"count": 2}}}, "ops.synonym"),
        ({"ops": {"context": {"templates": []}}}, "ops.context.templates"),
        ({"ops": {"context": {"templates": {"fr": ["x"]}}}}, "ops.context.templates"),
        ({"ops": {"swap": {}}, "sequence": ["synonym"]}, "sequence"),
        ({"keep_original": "yes"}, "keep_original"),
        ({"copiess": 2}, "config"),
    ],
)
def test_config_validation(data, field):
    with pytest.raises(AugmentConfigError) as exc:
        AugmentConfig.from_dict(data)
    assert exc.value.field == field


def test_output_does_not_depend_on_the_process_hash_seed():
    # Workers are separate processes: nothing may hang on set/dict order of strings.
    code = (
        "import json; from datasets_app.augment import augment_rows; "
        "rows = [{'a': '患者头痛三天，医生建议复查。病人同意。', "
        "'b': 'The doctor quickly approved the refund. It was urgent.'}] * 4; "
        "print(json.dumps(list(augment_rows(rows, {'copies': 4, 'seed': 5}))))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
