"""Evaluation gates and promotion.

A model version may enter a stage (staging, production) only when its latest evaluation passed
the gate in force; an Admin (global `override_gate_modelversion`) may promote anyway, giving a
reason, and the override is audited as such. Archiving or clearing a stage needs no gate.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record, record_denied

from .models import EvaluationGate, Job, ModelEvaluation, ModelVersion

DEFAULT_GATE = "Pilot criterion"
# (gate field, report metric, comparison) — "min": value >= threshold, "max": value <= threshold.
CHECKS = (
    ("accuracy_min", "accuracy", "min"),
    ("latency_p95_ms_max", "latency_p95_ms", "max"),
    ("perplexity_max", "perplexity", "max"),
    ("robustness_drop_max", "robustness_drop", "max"),
)
GATED_STAGES = {ModelVersion.Stage.STAGING, ModelVersion.Stage.PRODUCTION}


def default_gate() -> EvaluationGate:
    gate, _created = EvaluationGate.objects.get_or_create(
        name=DEFAULT_GATE, team=None, defaults={"accuracy_min": 0.85, "latency_p95_ms_max": 500.0}
    )
    return gate


def gate_for(user) -> EvaluationGate:
    """The owner's team gate (the first of their teams that has one), else the site default."""
    team_gate = (
        EvaluationGate.objects.filter(team__group__user=user).order_by("team__group__name").first()
    )
    return team_gate or default_gate()


def thresholds_of(gate: EvaluationGate) -> dict[str, float]:
    return {
        field: getattr(gate, field) for field, _m, _op in CHECKS if getattr(gate, field) is not None
    }


def judge(thresholds: dict[str, float], metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One check per threshold; a metric that was not measured fails its check."""
    checks = []
    for field, metric, op in CHECKS:
        if field not in thresholds:
            continue
        limit, value = thresholds[field], metrics.get(metric)
        passed = value is not None and (value >= limit if op == "min" else value <= limit)
        checks.append(
            {
                "metric": metric,
                "op": ">=" if op == "min" else "<=",
                "threshold": limit,
                "value": value,
                "passed": passed,
            }
        )
    return checks


def evaluation_record(*, job: Job, report: dict[str, Any]) -> ModelEvaluation:
    gate = None
    if job.params.get("gate"):
        gate = EvaluationGate.objects.filter(pk=job.params["gate"]).first()
    gate = gate or gate_for(job.source_model_version.owner)
    thresholds = thresholds_of(gate)
    checks = judge(thresholds, report.get("metrics", {}))
    with transaction.atomic():
        evaluation = ModelEvaluation.objects.create(
            model_version=job.source_model_version,
            job=job,
            dataset_version=job.dataset_version,
            gate=gate,
            thresholds=thresholds,
            metrics=report.get("metrics", {}),
            checks=checks,
            passed=all(c["passed"] for c in checks),
        )
        record(
            action="jobs.modelversion.evaluate",
            obj=job.source_model_version,
            actor=job.owner,
            outcome="allowed",
            details={
                "job": job.pk,
                "gate": gate.name,
                "passed": evaluation.passed,
                "checks": checks,
            },
        )
    return evaluation


def latest_evaluation(version: ModelVersion) -> ModelEvaluation | None:
    return version.evaluations.order_by("-created_at", "-id").first()


def model_version_promote(
    *, version: ModelVersion, stage: str, actor, override: bool = False, reason: str = ""
) -> ModelVersion:
    if stage not in ModelVersion.Stage.values:
        raise ValidationError({"stage": f"Choose one of {', '.join(ModelVersion.Stage.values)}."})
    details: dict[str, Any] = {"from": version.stage, "to": stage}
    if stage in GATED_STAGES:
        evaluation = latest_evaluation(version)
        passed = evaluation is not None and evaluation.passed
        details["evaluation"] = evaluation.pk if evaluation else None
        if not passed:
            why = (
                "it has no evaluation"
                if evaluation is None
                else "its latest evaluation failed the gate"
            )
            if not override:
                record_denied(
                    actor=actor, model=ModelVersion, action="promote", obj=version, reason=why
                )
                raise ValidationError({"stage": f"Cannot promote to {stage}: {why}."})
            if not actor.has_perm("jobs.override_gate_modelversion"):
                record_denied(
                    actor=actor, model=ModelVersion, action="override_gate", obj=version, reason=why
                )
                raise PermissionDenied("Only an Admin may promote past a failed gate.")
            if not reason.strip():
                raise ValidationError({"reason": "An override needs a reason."})
            details |= {"override": True, "reason": reason.strip()[:1000], "gate": why}
    with transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(
            stage=stage, stage_changed_at=timezone.now()
        )
        version.refresh_from_db()
        record(
            action="jobs.modelversion.promote_override"
            if details.get("override")
            else "jobs.modelversion.promote",
            actor=actor,
            obj=version,
            details=details,
        )
    return version
