"""The Django-free parts of the model jobs: scorers, perturbations, gate judging, percentiles,
the logits comparison and the legacy int8 storage round trip."""

from __future__ import annotations

import pytest

from jobs.engine import evaluate, inference, perturb
from jobs.engine.model_specs import EvaluateSpec
from jobs.gates import judge


def _spec(**fields) -> EvaluateSpec:
    return EvaluateSpec(model_dir="m", output_dir="o", events_path="e", **fields)


@pytest.mark.parametrize(
    ("fields", "prediction", "expected", "ok"),
    [
        ({}, " Yes。", "yes", True),
        ({}, "yes, it is", "yes", False),
        ({"scorer": "contains"}, "答案是：否。", "否", True),
        (
            {"scorer": "regex", "pattern": r"答案[:：]\s*(\S+?)[。.]"},
            "答案：高血压。",
            "高血压",
            True,
        ),
        ({"scorer": "regex", "pattern": r"answer: (\w+)"}, "no answer here", "x", False),
        ({"scorer": "label", "label_column": "y"}, "Positive\nbecause…", "positive", True),
        ({}, "ＡＢＣ", "abc", True),  # full-width forms normalise (NFKC)
    ],
)
def test_scorers(fields, prediction, expected, ok):
    assert evaluate.score(_spec(**fields), prediction, expected) is ok


def test_perturbations_change_text_deterministically():
    text = (
        "Their principal asked to write the weekly report; 患者在医院做检查，已经好转的情况下出院。"
    )
    for kind in perturb.PERTURBERS:
        once, again = perturb.perturb(kind, text, 7), perturb.perturb(kind, text, 7)
        assert once == again
    assert perturb.perturb("homophones", text, 7) != text
    assert perturb.perturb("typos", "the principal requested additional documentation", 1) != (
        "the principal requested additional documentation"
    )
    assert "3.5" in perturb.perturb("typos", "dose 3.5 mg twice daily for patients", 3)


def test_judge_checks_each_threshold_and_fails_what_was_not_measured():
    thresholds = {"accuracy_min": 0.85, "latency_p95_ms_max": 500.0, "perplexity_max": 20.0}
    checks = judge(thresholds, {"accuracy": 0.9, "latency_p95_ms": 700.0})
    assert [(c["metric"], c["passed"]) for c in checks] == [
        ("accuracy", True),
        ("latency_p95_ms", False),
        ("perplexity", False),
    ]
    assert all(c["passed"] for c in judge({"accuracy_min": 0.85}, {"accuracy": 0.85}))


def test_percentile_interpolates_like_numpy():
    values = [10.0, 20.0, 30.0, 40.0]
    assert inference.percentile(values, 50) == 25.0
    assert inference.percentile(values, 95) == pytest.approx(38.5)
    assert inference.percentile([5.0], 95) == 5.0


def test_identical_models_agree_fully():
    import torch

    logprobs = [torch.log_softmax(torch.randn(6, 11), -1)]
    same = inference.compare_log_probs(logprobs, logprobs)
    assert same == {"mean_abs_logits_diff": 0.0, "kl_divergence": 0.0, "top1_agreement": 1.0}
    shifted = inference.compare_log_probs(logprobs, [torch.log_softmax(torch.randn(6, 11), -1)])
    assert shifted["kl_divergence"] > 0 and shifted["top1_agreement"] < 1


def test_legacy_int8_round_trip(tmp_path):
    import torch

    from jobs.engine import legacy_int8
    from jobs.engine.demo_model import build_demo_model

    if not legacy_int8.available():
        pytest.skip("this torch has no quantize_dynamic")
    build_demo_model(tmp_path / "m")
    legacy_int8.quantize_and_save(tmp_path / "m", tmp_path / "q")
    assert legacy_int8.is_legacy(tmp_path / "q")
    original = inference.load_model(tmp_path / "m", device="cpu")
    reloaded = inference.load_model(tmp_path / "q", device="cpu")
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    with torch.no_grad():
        a, b = original(ids).logits, reloaded(ids).logits
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() > 0.8
    assert (a - b).abs().mean() < 0.05
