"""Desensitization: detectors (recall/precision on generated, labelled records), operators,
policy validation, presets and the row engine. Pure Python: no database."""

from __future__ import annotations

import copy
import ipaddress
import random
import re
import string
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from datasets_app.desensitize import (
    AGE,
    BANK_CARD,
    DATE,
    EMAIL,
    ID_CARD,
    IP_ADDRESS,
    LICENSE_PLATE,
    PASSPORT,
    PHONE,
    PLACEHOLDER_RE,
    PRESETS,
    URL,
    US_SSN,
    Analyzer,
    Desensitizer,
    Policy,
    PolicyError,
    desensitize_rows,
    detect,
    is_protected_span,
    protected_spans,
)
from datasets_app.desensitize.detectors import id_check_char, luhn_ok, valid_id18
from datasets_app.desensitize.operators import (
    Binner,
    age90,
    format_bin_label,
    mask,
    pseudonym,
    redact,
    tag,
    year,
)

KEY = b"k" * 32
PROVINCES = ["11", "12", "13", "31", "32", "33", "37", "41", "44", "51", "61", "65", "71", "81"]

# --- labelled record generator --------------------------------------------------------------------


def gen_id18(rng: random.Random) -> str:
    born = date(1900, 1, 1) + timedelta(days=rng.randrange((date.today() - date(1900, 1, 1)).days))
    body = (
        f"{rng.choice(PROVINCES)}{rng.randrange(10000):04d}{born:%Y%m%d}{rng.randrange(1000):03d}"
    )
    return body + id_check_char(body)


def gen_bad_id18(rng: random.Random) -> str:
    good = gen_id18(rng)
    return good[:17] + rng.choice([c for c in "0123456789X" if c != good[17]])


def gen_id15(rng: random.Random) -> str:
    born = date(1900, 1, 1) + timedelta(days=rng.randrange(36500))
    return (
        f"{rng.choice(PROVINCES)}{rng.randrange(10000):04d}{born:%y%m%d}{rng.randrange(1000):03d}"
    )


def _luhn_complete(body: str) -> str:
    return next(body + d for d in string.digits if luhn_ok(body + d))


def gen_card(rng: random.Random) -> str:
    if rng.random() < 0.5:  # UnionPay
        prefix, length = rng.choice(["622202", "621700", "622848", "625965"]), rng.choice([16, 19])
    else:
        prefix, length = rng.choice(["4", "51", "55", "2221", "35"]), 16
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return _luhn_complete(body)


def gen_bad_card(rng: random.Random) -> str:
    good = gen_card(rng)
    return good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)


def group_card(rng: random.Random, card: str) -> str:
    sep = rng.choice(["", "", " ", "-"])
    return sep.join(card[i : i + 4] for i in range(0, len(card), 4)) if sep else card


def gen_mobile(rng: random.Random) -> str:
    n = "1" + rng.choice("3456789") + "".join(rng.choice(string.digits) for _ in range(9))
    return rng.choice(
        [
            n,
            n,
            f"+86{n}",
            f"+86 {n}",
            f"86{n}",
            f"{n[:3]} {n[3:7]} {n[7:]}",
            f"{n[:3]}-{n[3:7]}-{n[7:]}",
        ]
    )


def gen_landline(rng: random.Random) -> str:
    area, digits = rng.choice([("010", 8), ("021", 8), ("020", 8), ("0755", 8), ("0571", 7)])
    num = str(rng.randint(2, 8)) + "".join(rng.choice(string.digits) for _ in range(digits - 1))
    ext = rng.choice(["", "", "", "-123", "转8021"])
    return rng.choice([f"{area}-{num}{ext}", f"({area}){num}", f"{area} {num}"])


def gen_email(rng: random.Random) -> str:
    local = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))
    if rng.random() < 0.4:
        local += rng.choice([".", "_", ""]) + str(rng.randint(1, 999))
    return f"{local}@{rng.choice(['example.com', 'hospital.org.cn', 'bank.cn', 'mail.gov.cn'])}"


def gen_ip(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return ".".join(str(rng.randint(1 if i == 0 else 0, 255)) for i in range(4))
    addr = ipaddress.IPv6Address(rng.getrandbits(128))
    return addr.compressed if rng.random() < 0.7 else addr.exploded


def gen_date(rng: random.Random) -> str:
    d = date(2000, 1, 1) + timedelta(days=rng.randrange(9000))
    return rng.choice(
        [
            f"{d:%Y-%m-%d}",
            f"{d.year}/{d.month}/{d.day}",
            f"{d.year}年{d.month}月{d.day}日",
            f"{d.year}年{d.month}月{d.day}日{rng.randint(8, 20)}时{rng.randint(10, 59)}分",
            f"{d:%Y-%m-%d} {rng.randint(8, 20)}:{rng.randint(10, 59)}",
        ]
    )


def gen_noise(rng: random.Random) -> str:
    """Numbers that are not personal data: order ids, amounts, times, versions, counters."""
    return rng.choice(
        [
            f"订单号DD{rng.randrange(10**12):012d}",
            str(rng.randrange(10**9, 10**10)),
            f"{rng.randint(1, 99999):,}.{rng.randint(0, 99):02d}元",
            f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}",
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            f"{rng.randint(1, 99)}%",
            str(rng.randrange(10**12, 10**13)),
            f"12{rng.randrange(10**9):09d}",
            f"ISBN 978-7-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}",
            f"第{rng.randint(1, 30)}床，体温{rng.randint(36, 40)}.{rng.randint(0, 9)}℃",
        ]
    )


NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "Alice Smith", "Bob Lee"]
# (template, slots): every slot is (entity, generator, valid). Chinese templates have no spaces.
ZH = [
    "患者{n}身份证号{ID}于{DATE}就诊，电话{MOBILE}，{NOISE}。",
    "客户{n}的银行卡号为{CARD}，请于{DATE}前核实。",
    "请联系{EMAIL}或拨打{LANDLINE}获取报告，身份证{ID15}。",
    "服务器{IP}在{DATE}出现异常登录，操作员{n}手机{MOBILE}，{NOISE}，{NOISE}。",
    "录入错误的证件号{BADID}和卡号{BADCARD}不应被识别，备注：共3次，金额1200元。",
    "退款至卡{CARD}，持卡人身份证{ID}，联系邮箱{EMAIL}。",
]
EN = [
    "Patient {n} (ID {ID}) visited on {DATE}; call {MOBILE} or email {EMAIL}.",
    "Card {CARD} was charged {NOISE}, contact {LANDLINE}, login from {IP} ({NOISE}).",
    "Typo'd numbers {BADID} and {BADCARD} must not be reported; order 20240305 shipped.",
    "Old ID {ID15} belongs to {n}; backup server at {IP}, card {CARD}.",
]
SLOTS = {
    "ID": (ID_CARD, gen_id18, True),
    "ID15": (ID_CARD, gen_id15, True),
    "BADID": (ID_CARD, gen_bad_id18, False),
    "CARD": (BANK_CARD, lambda r: group_card(r, gen_card(r)), True),
    "BADCARD": (BANK_CARD, lambda r: group_card(r, gen_bad_card(r)), False),
    "MOBILE": (PHONE, gen_mobile, True),
    "LANDLINE": (PHONE, gen_landline, True),
    "EMAIL": (EMAIL, gen_email, True),
    "IP": (IP_ADDRESS, gen_ip, True),
    "DATE": (DATE, gen_date, True),
    "NOISE": ("NOISE", gen_noise, False),
}
SLOT_RE = re.compile(r"\{(\w+)\}")


@dataclass
class Label:
    entity: str
    start: int
    end: int
    valid: bool


def generate_records(n: int, seed: int = 20240305) -> list[tuple[str, list[Label]]]:
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        template = rng.choice(ZH + EN)
        text, labels, pos = "", [], 0
        for m in SLOT_RE.finditer(template):
            text += template[pos : m.start()]
            pos = m.end()
            if m.group(1) == "n":
                text += rng.choice(NAMES)
                continue
            entity, gen, valid = SLOTS[m.group(1)]
            value = gen(rng)
            labels.append(Label(entity, len(text), len(text) + len(value), valid))
            text += value
        records.append((text + template[pos:], labels))
    return records


RECORDS = generate_records(2500)


def _measure():
    analyzer = Analyzer()
    hits, totals, false_pos, found_total, invalid_reported = {}, {}, [], 0, []
    for text, labels in RECORDS:
        findings = analyzer.analyze(text)
        found_total += len(findings)
        spans = {(f.entity, f.start, f.end) for f in findings}
        for lab in labels:
            if lab.valid:
                totals[lab.entity] = totals.get(lab.entity, 0) + 1
                if (lab.entity, lab.start, lab.end) in spans:
                    hits[lab.entity] = hits.get(lab.entity, 0) + 1
            elif lab.entity in (ID_CARD, BANK_CARD) and any(
                f.entity in (ID_CARD, BANK_CARD) and f.start < lab.end and lab.start < f.end
                for f in findings
            ):
                invalid_reported.append(text[lab.start : lab.end])
        expected = {(lab.entity, lab.start, lab.end) for lab in labels if lab.valid}
        false_pos += [(text, f) for f in findings if (f.entity, f.start, f.end) not in expected]
    return hits, totals, false_pos, found_total, invalid_reported


MEASURE = _measure()


def test_recall_on_valid_identifiers_is_at_least_99_percent():
    hits, totals, *_ = MEASURE
    assert sum(totals.values()) >= 2000
    for entity, total in totals.items():
        recall = hits.get(entity, 0) / total
        assert recall >= 0.99, (entity, recall, total)


def test_no_checksum_invalid_number_reported_as_id_or_card():
    *_, invalid_reported = MEASURE
    assert invalid_reported == []


def test_precision_on_generated_records():
    _, _, false_pos, found_total, _ = MEASURE
    assert found_total > 0
    assert 1 - len(false_pos) / found_total >= 0.99, false_pos[:5]


def test_generated_ids_really_are_valid_and_invalid():
    rng = random.Random(7)
    assert all(valid_id18(gen_id18(rng)) for _ in range(200))
    assert not any(valid_id18(gen_bad_id18(rng)) for _ in range(200))
    assert all(luhn_ok(gen_card(rng)) for _ in range(200))
    assert not any(luhn_ok(gen_bad_card(rng)) for _ in range(200))


# --- detectors, targeted --------------------------------------------------------------------------


def _entities(text: str) -> list[tuple[str, str]]:
    return [(f.entity, f.text) for f in detect(text)]


def test_identifiers_inside_chinese_sentence_without_spaces():
    idn = "11010519900307123" + id_check_char("11010519900307123")
    text = f"患者身份证号{idn}于2024年3月5日就诊，电话13812345678。"
    assert _entities(text) == [(ID_CARD, idn), (DATE, "2024年3月5日"), (PHONE, "13812345678")]


def test_id_card_rules():
    born_future = date.today() + timedelta(days=400)
    body = f"110105{born_future:%Y%m%d}123"
    assert detect(body + id_check_char(body)) == []  # born in the future
    body = "11010518990307123"
    assert detect(body + id_check_char(body)) == []  # before 1900
    body = "11010519900230123"
    assert detect(body + id_check_char(body)) == []  # 30 February
    assert detect("110105199003071234") == []  # failing checksum: neither ID nor card
    lower_x = next(
        b + "x" for b in (f"11010519900307{i:03d}" for i in range(1000)) if id_check_char(b) == "X"
    )
    assert _entities(f"证件{lower_x}。") == [(ID_CARD, lower_x)]
    assert _entities("旧证110105900307123号") == [(ID_CARD, "110105900307123")]
    # A longer digit run is not an ID or a phone inside it.
    assert detect("编号1101051990030712399999") == []


def test_grouped_id_and_full_width_digits():
    idn = "11010519900307123" + id_check_char("11010519900307123")
    grouped = f"{idn[:6]} {idn[6:14]} {idn[14:]}"
    assert _entities(f"证件号{grouped}，") == [(ID_CARD, grouped)]
    full_width = "１３８１２３４５６７８"  # typed in an IME's full-width mode
    assert _entities(f"电话{full_width}。") == [(PHONE, full_width)]
    assert mask(full_width, PHONE) == "138****5678"


def test_phone_forms():
    for phone in ["13812345678", "+8613812345678", "+86 138 1234 5678", "0086-138-1234-5678"]:
        assert _entities(f"电话{phone}。") == [(PHONE, phone)], phone
    for phone in ["010-12345678", "0755-1234567", "(021)12345678", "010-12345678转123"]:
        assert _entities(f"座机{phone}，") == [(PHONE, phone)], phone
    assert detect("订单1381234567890号") == []  # 13 digits, not 86 + mobile
    assert detect("编号12345678901") == []  # 11 digits but not 1[3-9]


def test_bank_card_scores_and_grouping():
    up = _luhn_complete("622202123456789012")
    visa = _luhn_complete("411111111111111")
    (f_up,) = detect(f"卡号{up}")
    (f_visa,) = detect(f"card {visa}")
    assert f_up.entity == f_visa.entity == BANK_CARD
    assert f_up.score > f_visa.score >= 0.95
    grouped = " ".join(visa[i : i + 4] for i in range(0, 16, 4))
    assert _entities(f"card {grouped}.") == [(BANK_CARD, grouped)]
    bad = visa[:-1] + str((int(visa[-1]) + 1) % 10)
    assert detect(f"card {bad}") == []


def test_email_ip_url():
    text = "邮箱zhang.san@example.com联系，IP地址192.168.1.10，fe80::1%eth0，http://a.cn/x?y=1。"
    assert _entities(text) == [
        (EMAIL, "zhang.san@example.com"),
        (IP_ADDRESS, "192.168.1.10"),
        (IP_ADDRESS, "fe80::1%eth0"),
        (URL, "http://a.cn/x?y=1"),
    ]
    assert _entities("see www.example.com/path.") == [(URL, "www.example.com/path")]
    assert detect("999.1.1.1 and 12:30:45 and 1.2.3") == []


def test_dates_with_times():
    cases = {
        "2024-03-05": "2024-03-05",
        "2024/3/5 14:30": "2024/3/5 14:30",
        "2024年3月5日14时30分": "2024年3月5日14时30分",
        "05/03/2024": "05/03/2024",
        "March 5, 2024": "March 5, 2024",
    }
    for raw, span in cases.items():
        assert _entities(f"于{raw}就诊") == [(DATE, span)], raw
    assert detect("2024-02-30") == []


def test_passport_plate_ssn_age():
    assert _entities("护照号码：E12345678。") == [(PASSPORT, "E12345678")]
    assert _entities("passport no AB1234567") == [(PASSPORT, "AB1234567")]
    assert detect("model AB1234567 shipped") == []  # generic form needs the keyword
    assert _entities("车牌京A12345，新能源粤BD12345") == [
        (LICENSE_PLATE, "京A12345"),
        (LICENSE_PLATE, "粤BD12345"),
    ]
    assert _entities("SSN 234-56-7890") == [(US_SSN, "234-56-7890")]
    assert detect("SSN 000-12-3456, 666-12-3456, 900-12-3456, 234-00-1234") == []
    assert [f.text for f in detect("患者92岁，age 93, a 95-year-old; 45岁") if f.entity == AGE] == [
        "92",
        "93",
        "95",
    ]


def test_custom_patterns_and_value_group():
    analyzer = Analyzer(
        entities=[], custom_patterns={"MRN": r"MRN[:：]?\s*(?P<value>[0-9]{8})", "EMP": r"EMP\d{6}"}
    )
    found = [(f.entity, f.text) for f in analyzer.analyze("MRN: 12345678, EMP123456")]
    assert found == [("MRN", "12345678"), ("EMP", "EMP123456")]


def test_overlaps_resolved_by_score_then_length():
    text = "see http://user@example.com/x and 2024-03-05"
    first = detect(text)[0]
    assert (first.entity, first.text) == (URL, "http://user@example.com/x")
    assert all(a.end <= b.start for a, b in zip(detect(text), detect(text)[1:], strict=False))


# --- operators ------------------------------------------------------------------------------------


def test_mask_outputs():
    assert mask("11010519900307002X", ID_CARD) == "110105********002X"
    assert mask("13812345678", PHONE) == "138****5678"
    assert mask("+86 138-1234-5678", PHONE) == "+86 138****5678"
    assert mask("010-12345678", PHONE) == "010-****5678"
    assert mask("6222021234567894", BANK_CARD) == "622202******7894"
    assert mask("6222 0212 3456 7894", BANK_CARD) == "622202******7894"
    assert mask("zhangsan@example.com", EMAIL) == "z***@example.com"
    assert mask("张三", "PERSON") == "张**"
    assert mask("13812345678", PHONE, keep_start=0, keep_end=2, char="#") == "#########78"


def test_tag_redact_year_age90():
    assert tag("110105199003071239", ID_CARD) == "[ID_CARD]"
    assert redact("anything") == ""
    for value in ["2024-03-05 14:30", "2024年3月5日", "05/03/2024", 20240305, "March 5, 2024"]:
        assert year(value) == "2024", value
    assert year("3月5日") == "[DATE]"
    assert age90(92) == "90+"
    assert age90(89) == 89
    assert age90("93岁") == "90+岁"
    assert age90(None) is None


def test_pseudonym_stable_normalised_and_keyed():
    idn = "11010519900307123" + id_check_char("11010519900307123")
    token = pseudonym(idn, ID_CARD, KEY)
    assert re.fullmatch(r"\[ID_CARD:[0-9a-f]{10}\]", token)
    assert PLACEHOLDER_RE.fullmatch(token)
    assert pseudonym(f"{idn[:6]} {idn[6:14]} {idn[14:]}", ID_CARD, KEY) == token
    assert pseudonym("+86 138-1234-5678", PHONE, KEY) == pseudonym("13812345678", PHONE, KEY)
    assert pseudonym(idn, ID_CARD, b"another key") != token
    assert pseudonym("11010519900307124X", ID_CARD, KEY) != token


def test_bin_labels_and_min_bin_size_merge():
    assert [format_bin_label(lo, hi, "wan") for lo, hi in [(0, 1e4), (1e4, 5e4), (5e4, 2e5)]] == [
        "0-1万",
        "1-5万",
        "5-20万",
    ]
    assert format_bin_label(2e5, float("inf"), "wan") == "20万+"
    assert format_bin_label(0, 10000) == "0-10000"
    b = Binner([0, 10000, 50000, 200000], style="wan")
    assert [b.apply(x) for x in (5, 15000, "6万", 1e6, "n/a")] == [
        "0-1万",
        "1-5万",
        "5-20万",
        "20万+",
        "n/a",
    ]
    policy = Policy.from_dict(
        {
            "columns": {
                "amount": {
                    "operator": "bin",
                    "edges": [0, 10000, 50000, 200000],
                    "labels": ["0-1万", "1-5万", "5-20万", "20万+"],
                    "min_bin_size": 5,
                }
            },
            "scan_columns": [],
        }
    )
    rows = [{"amount": 100 * i} for i in range(20)]  # 20 rows under 1万
    rows += [{"amount": 20000}] * 3 + [{"amount": 60000}] * 6 + [{"amount": 500000}]
    d = Desensitizer(policy, KEY)
    assert d.needs_fit
    with pytest.raises(RuntimeError):
        d.transform_row(rows[0])
    d.fit(rows)
    out = [d.transform_row(r)["amount"] for r in rows]
    # 1-5万 (3 rows) merges into 5-20万 (6), then 20万+ (1) joins them: "1万+".
    assert out[:20] == ["0-1万"] * 20
    assert set(out[20:]) == {"1万+"}
    assert [(b["label"], b["count"]) for b in d.report()["bins"]["amount"]] == [
        ("0-1万", 20),
        ("1万+", 10),
    ]


def test_placeholders_and_protected_spans():
    produced = [
        tag("x", ID_CARD),
        pseudonym("x", "PERSON", KEY),
        mask("11010519900307002X", ID_CARD),
        mask("13812345678", PHONE),
        mask("zhangsan@example.com", EMAIL),
    ]
    for value in produced[:2]:
        assert PLACEHOLDER_RE.fullmatch(value)
    text = "患者" + "，".join(produced) + "就诊。"
    spans = protected_spans(text)
    assert [text[s:e] for s, e in spans] == produced
    assert all(is_protected_span(v) for v in produced)
    assert not is_protected_span("普通文本 plain text")


# --- policy ---------------------------------------------------------------------------------------

FULL_POLICY = {
    "entities": {
        "ID_CARD": {"operator": "pseudonym"},
        "PHONE": {"operator": "mask"},
        "DATE": {"operator": "year"},
        "EMAIL": "tag",
        "PERSON": {"operator": "pseudonym"},
    },
    "columns": {
        "name": {"entity": "PERSON"},
        "amount": {"operator": "bin", "edges": [0, 10000], "labels": ["低", "高"]},
        "visit_date": {"operator": "year"},
        "age": {"operator": "age90"},
    },
    "scan_columns": None,
    "custom_patterns": {"MRN": r"MRN\d{8}"},
    "min_score": 0.5,
}


def test_policy_round_trip_and_defaults():
    policy = Policy.from_dict(FULL_POLICY)
    assert policy.columns["name"].operator == "pseudonym"  # from entities.PERSON
    assert policy.columns["visit_date"].entity == DATE
    assert policy.entities["MRN"].operator == "tag"  # custom pattern without a rule
    assert Policy.from_dict(policy.to_dict()) == policy
    assert "MRN" in policy.detected_entities and "PERSON" not in policy.detected_entities


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entities": {"PHONE": {"operator": "hash"}}}, "unknown operator 'hash'"),
        ({"entities": {"NAME": {"operator": "tag"}}}, "unknown entity 'NAME'"),
        ({"custom_patterns": {"MRN": "MRN(\\d{8}"}}, "invalid regular expression"),
        ({"custom_patterns": {"MRN": "\\d*"}}, "matches the empty string"),
        ({"custom_patterns": {"mrn": "x"}}, "UPPER_CASE"),
        ({"columns": {"a": {"operator": "bin", "edges": [0, 5, 5]}}}, "strictly increasing"),
        ({"columns": {"a": {"operator": "bin", "edges": [0, 5], "labels": ["x"]}}}, "1 labels"),
        ({"columns": {"a": {"operator": "bin"}}}, "edges"),
        ({"columns": {"a": {"operator": "mask", "keep": 3}}}, "unknown parameter"),
        ({"columns": {"a": {"entity": "ADDRESS"}}}, "no rule in 'entities'"),
        ({"columns": {"a": {"entity": "CITY", "operator": "tag"}}}, "unknown entity 'CITY'"),
        ({"entities": {"PHONE": {"operator": "bin", "edges": [1]}}}, "numeric columns"),
        ({"min_score": 2}, "min_score"),
        ({"scan_column": ["a"]}, "unknown key"),
    ],
)
def test_policy_validation_errors(change, message):
    with pytest.raises(PolicyError, match=re.escape(message)):
        Policy.from_dict({**FULL_POLICY, **change})


# --- presets and engine ---------------------------------------------------------------------------

ROW = {
    "id": 7,
    "score": 0.93,
    "ok": True,
    "missing": None,
    "name": "张伟",
    "age": 95,
    "visit_date": "2024-03-05",
    "text": "患者张伟，92岁，身份证11010519900307123"
    + id_check_char("11010519900307123")
    + "，电话13812345678，卡号6222021234567894，MRN: 12345678，于2024年3月5日就诊。",
    "messages": [
        {"role": "user", "content": "My email is jane.doe@example.com, SSN 234-56-7890."},
        {
            "role": "assistant",
            "content": "Noted. Visit https://clinic.example.org/p/12 on 2024-04-01.",
        },
    ],
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_load_and_run(name):
    preset = PRESETS[name]
    assert preset.title and preset.description
    columns = {"name": {"entity": "PERSON"}}
    if name == "finance":
        columns["amount"] = {"entity": "AMOUNT", "min_bin_size": 1}
    policy = preset.to_policy(columns)
    d = Desensitizer(policy, KEY)
    row = {**ROW, "amount": 123456}
    d.fit([row])
    out = d.transform_row(row)
    assert out["name"] != row["name"]
    assert "13812345678" not in out["text"] and "6222021234567894" not in out["text"]
    assert "110105199003071" not in out["text"]
    for value in PLACEHOLDER_RE.findall(out["text"]):
        assert value[1:].split(":")[0].rstrip("]") in policy.entities
    if name == "finance":
        assert out["amount"] == "5-20万"


def test_hipaa_dates_ages_and_identifiers():
    policy = PRESETS["hipaa_safe_harbor"].to_policy(
        {
            "name": {"entity": "PERSON"},
            "age": {"operator": "age90"},
            "visit_date": {"operator": "year"},
        }
    )
    out = Desensitizer(policy, KEY).transform_row(ROW)
    assert out["age"] == "90+" and out["visit_date"] == "2024" and out["name"] == "[PERSON]"
    assert "90+岁" in out["text"] and "于2024就诊" in out["text"] and "MRN: [MRN]" in out["text"]
    user, assistant = (m["content"] for m in out["messages"])
    assert user == "My email is [EMAIL], SSN [US_SSN]."
    assert assistant == "Noted. Visit [URL] on 2024."


def test_engine_scans_nested_messages_and_leaves_non_strings():
    original = copy.deepcopy(ROW)
    d = Desensitizer(PRESETS["pipl"].to_policy(), KEY)
    out = d.transform_row(ROW)
    assert original == ROW  # input untouched
    for key in ("id", "score", "ok", "missing", "age"):
        assert out[key] is ROW[key]
    assert out["messages"][0]["content"] == "My email is j***@example.com, SSN 234-56-7890."
    assert out["messages"][0]["role"] == "user"
    assert "[ID_CARD:" in out["text"] and "138****5678" in out["text"]
    assert "622202******7894" in out["text"]


def test_pseudonyms_join_across_rows_and_columns():
    policy = Policy.from_dict(
        {
            "entities": {"ID_CARD": {"operator": "pseudonym"}},
            "columns": {"id_no": {"entity": "ID_CARD", "operator": "pseudonym"}},
        }
    )
    idn = "11010519900307123" + id_check_char("11010519900307123")
    d = Desensitizer(policy, KEY)
    a = d.transform_row({"id_no": idn, "note": f"证件{idn}"})
    b = d.transform_row({"id_no": f"{idn[:6]} {idn[6:]}", "note": "无"})
    assert a["id_no"] == b["id_no"] == a["note"][2:]
    assert Desensitizer(policy, b"other")._pseudonymizer(idn, ID_CARD) != a["id_no"]


def test_report_preview_and_scan_columns():
    policy = PRESETS["pipl"].to_policy({"name": {"entity": "PERSON"}}, scan_columns=["text"])
    d = Desensitizer(policy, KEY, sample_size=1)
    preview = d.preview([ROW, ROW], n=1)
    assert len(preview) == 1 and preview[0]["before"] == ROW
    assert d.report()["rows_processed"] == 0  # preview does not count
    out = d.transform_row(ROW)
    d.transform_row({"text": "nothing here", "name": None})
    assert out["messages"] == ROW["messages"]  # not a scanned column
    report = d.report()
    assert report["rows_processed"] == 2 and report["rows_changed"] == 1
    assert report["entities"] == {"ID_CARD": 1, "PHONE": 1, "BANK_CARD": 1, "PERSON": 1}
    assert report["columns"] == {"name": 1, "text": 3}
    assert len(report["samples"]) == 1 and report["samples"][0]["before"]["name"] == "张伟"


def test_desensitize_rows_progress_and_two_passes():
    policy = {"columns": {"amount": {"operator": "bin", "edges": [0, 100], "min_bin_size": 2}}}
    rows = [{"amount": i} for i in range(5)]
    done, report = [], {}
    out = list(
        desensitize_rows(rows, policy, KEY, progress=done.append, progress_every=2, report=report)
    )
    # Only the 0-100 bin holds values: empty bins are not merged into it.
    assert [r["amount"] for r in out] == ["0-100"] * 5
    assert done == [2, 4, 5] and report["rows_processed"] == 5
    with pytest.raises(ValueError, match="two passes"):
        list(desensitize_rows(iter(rows), policy, KEY))


def test_recognizer_throughput_is_reasonable():
    # Guard against catastrophic regex backtracking on long, digit-heavy text.
    text = ("1234567890 " * 200) + ("a" * 2000) + ("::" * 500) + ("@." * 500)
    analyzer = Analyzer()
    analyzer.analyze(text)
