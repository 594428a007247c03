"""Compression report figures through Hearth's engine (`python -m jobs.engine.compress`).

    .venv/bin/python bench/compression_report.py                          # tiny Qwen2, CPU
    .venv/bin/python bench/compression_report.py --size 0.5b --methods int8_weight_only,bnb_nf4

Builds a Qwen2 model from a config (random weights; 0.5b is Qwen2.5-0.5B's shape) with a
tokenizer trained on the synthetic SFT data of bench/train_throughput.py, writes that data as
the eval set, runs one compression job per method in its own process, and prints the report's
figures side by side. Methods this machine cannot run are listed with the reason. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.train_throughput import build_model, make_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["tiny", "0.5b"], default="tiny")
    parser.add_argument("--methods", default="int8_weight_only,int8_dynamic,legacy_dynamic_int8")
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--latency-runs", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    from jobs.engine.compress import supported_methods
    from jobs.engine.model_specs import REPORT, CompressSpec

    support = supported_methods()
    with tempfile.TemporaryDirectory(prefix="hearth-compress-bench-") as tmp:
        work = Path(tmp)
        rows = make_rows(args.examples, seed=0)
        (work / "data.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8"
        )
        model_dir = build_model(work / "model", args.size, None, rows)
        for method in args.methods.split(","):
            if support.get(method, "unknown method"):
                print(f"{method}: not run here ({support.get(method, 'unknown method')})")
                continue
            folder = work / method
            folder.mkdir()
            spec = CompressSpec(
                model_dir=str(model_dir),
                output_dir=str(folder / "output"),
                events_path=str(folder / "events.jsonl"),
                data_path=str(work / "data.jsonl"),
                format="alpaca",
                method=method,
                latency_runs=args.latency_runs,
                max_new_tokens=args.max_new_tokens,
            )
            spec.save(folder / "spec.json")
            done = subprocess.run(
                [sys.executable, "-m", "jobs.engine.compress", str(folder / "spec.json")],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                print(f"{method}: failed ({done.returncode})\n{done.stderr[-3000:]}")
                continue
            print_report(json.loads((folder / "output" / REPORT).read_text("utf-8")))


def print_report(report: dict) -> None:
    """One method's figures, printed as soon as its job ends (a long run keeps what it got)."""
    if True:
        o, c, k = report["original"], report["compressed"], report["comparison"]
        print(
            f"\n{report['method_title']} on {report['device']} ({report['dtype']} original), "
            f"{report['eval_examples']} eval rows"
        )
        print(f"{'':24}{'original':>14}{'compressed':>14}")
        for label, key, scale, fmt in (
            ("weights on disk (MiB)", "weights_bytes", 2**-20, "{:14.1f}"),
            ("peak memory (MiB)", "peak_memory_mb", 1, "{:14.1f}"),
            ("latency p50 (ms)", "latency_p50_ms", 1, "{:14.1f}"),
            ("latency p95 (ms)", "latency_p95_ms", 1, "{:14.1f}"),
            ("tokens/s", "tokens_per_second", 1, "{:14.1f}"),
            ("perplexity", "perplexity", 1, "{:14.2f}"),
        ):
            print(f"{label:24}" + fmt.format(o[key] * scale) + fmt.format(c[key] * scale))
        print(
            f"size ratio {k['size_ratio']:.3f}, speed-up {k['speedup']:.2f}, "
            f"mean |Δ log-prob| {k['mean_abs_logits_diff']:.4f}, KL {k['kl_divergence']:.5f}, "
            f"top-1 agreement {k['top1_agreement']:.3f}"
        )
        for note in report["notes"]:
            print(f"note: {note}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
