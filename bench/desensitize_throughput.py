"""Desensitization throughput on one core, for the PIPL and HIPAA Safe Harbor presets.

    .venv/bin/python bench/desensitize_throughput.py [--records 50000] [--pii-rate 0.3]

Generates mixed Chinese and English records of about 200 characters (a share of them carrying
IDs, phones, cards, emails, IPs, dates), runs each preset over them in this process and prints
records/s and MB/s (UTF-8 bytes of the string values). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets_app.desensitize import PRESETS, Desensitizer
from datasets_app.desensitize.detectors import id_check_char, luhn_ok

PLAIN_ZH = [
    "患者主诉头痛三天，伴恶心呕吐，既往体健，无药物过敏史。",
    "查体：神志清楚，双肺呼吸音清，未闻及干湿啰音，心律齐。",
    "建议继续口服降压药物，低盐低脂饮食，定期复查血压和血脂。",
    "本月理财产品收益稳定，客户希望调整资产配置以降低风险。",
    "贷款审批已完成，请客户经理在系统中补充抵押物评估材料。",
    "会议纪要：各部门需在周五前提交季度预算执行情况说明。",
]
PLAIN_EN = [
    "The patient reported mild headache and nausea for three days. ",
    "Blood pressure was stable after the medication was adjusted. ",
    "The customer asked to move funds into a lower-risk portfolio. ",
    "Please submit the quarterly budget report before Friday. ",
    "Follow-up in two weeks with a repeat lipid panel is advised. ",
]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _pii(rng: random.Random) -> str:
    body = f"110105{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += _digits(rng, 3)
    card = "622202" + _digits(rng, 9)
    card = next(card + d for d in string.digits if luhn_ok(card + d))
    mobile = "1" + rng.choice("3456789") + _digits(rng, 9)
    return rng.choice(
        [
            f"患者身份证号{body}{id_check_char(body)}于2024年3月{rng.randint(1, 28)}日就诊，"
            f"电话{mobile}。",
            f"客户银行卡号{card}，联系邮箱user{rng.randint(1, 999)}@example.com。",
            f"Patient phone +86 {mobile}, seen on 2024-03-{rng.randint(10, 28)} 14:30. ",
            f"Login from 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7, "
            f"MRN: {_digits(rng, 8)}. ",
            f"座机010-{rng.randint(2, 8)}{_digits(rng, 7)}，92岁，车牌京A{_digits(rng, 5)}。",
        ]
    )


def make_records(n: int, pii_rate: float, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    records = []
    for i in range(n):
        parts: list[str] = []
        while sum(len(p) for p in parts) < 200:
            if rng.random() < pii_rate / 3:
                parts.append(_pii(rng))
            else:
                parts.append(rng.choice(PLAIN_ZH if rng.random() < 0.6 else PLAIN_EN))
        records.append({"id": i, "text": "".join(parts)[:220], "label": rng.random() < 0.5})
    return records


def run(name: str, records: list[dict]) -> None:
    policy = PRESETS[name].to_policy()
    d = Desensitizer(policy, b"bench-key-0123456789abcdef")
    size = sum(len(r["text"].encode()) for r in records)
    start = time.perf_counter()
    for r in records:
        d.transform_row(r)
    elapsed = time.perf_counter() - start
    rep = d.report()
    print(
        f"{name:18s} {len(records) / elapsed:10,.0f} records/s  {size / elapsed / 1e6:6.2f} MB/s  "
        f"({elapsed:.2f} s; rows changed {rep['rows_changed']:,}; "
        f"top entities {dict(list(rep['entities'].items())[:4])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--pii-rate", type=float, default=0.3, help="share of PII sentences x3")
    args = parser.parse_args()
    records = make_records(args.records, args.pii_rate)
    avg = sum(len(r["text"]) for r in records) / len(records)
    py = sys.version.split()[0]
    print(f"{len(records):,} records, {avg:.0f} characters on average, Python {py}, one core")
    for name in ("pipl", "hipaa_safe_harbor"):
        run(name, records)


if __name__ == "__main__":
    main()
