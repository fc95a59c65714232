"""MLflow tracking and registry helpers shared by every model family (one place for aliases and promotion).

Aliases, not the deprecated stages: a new version gets ``challenger``; ``promote`` moves ``production``
to it when its validation metric is at least as good as the current production version's (or when there
is no production version yet) and records why as tags on the version. Test labels are never consulted.
"""

from __future__ import annotations

from serving.aliases import (  # noqa: F401 - re-exported: training code uses them from here
    CHALLENGER,
    PRODUCTION,
    Promotion,
    retry_locked,
    rollback,
    sqlite_write_lock,
    version_by_alias,
)
from serving.naming import registry_name  # noqa: F401 - re-exported: training code names models here
from serving.settings import Settings, get_settings


def configure(settings: Settings | None = None, experiment: str | None = None) -> str | None:
    """Point MLflow at the project's tracking store and (optionally) create/select an experiment.

    Returns the experiment id. Artifacts of new experiments go under ``settings.artifact_root``.
    """
    import mlflow

    s = settings or get_settings()
    mlflow.set_tracking_uri(s.mlflow_tracking_uri)
    mlflow.set_registry_uri(s.mlflow_registry_uri)
    if experiment is None:
        return None
    with sqlite_write_lock(s):
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            location = (s.artifact_root / experiment).resolve().as_uri()
            exp_id = mlflow.create_experiment(experiment, artifact_location=location)
        else:
            exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def set_challenger(name: str, version: str | int) -> None:
    from mlflow import MlflowClient

    with sqlite_write_lock():
        retry_locked(MlflowClient().set_registered_model_alias)(name, CHALLENGER, str(version))


def infer_signature(example, output):
    """``mlflow.models.infer_signature`` without its hint that integer columns cannot hold missing values: our
    integer columns (epoch-ms timestamps, counts, flags) never do, and the hint filled every training log."""
    import warnings

    from mlflow.models import infer_signature as infer

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        return infer(example, output)


def log_model(python_model, name: str, signature, input_example, register: bool = True):
    """Log ``python_model`` as the active run's pyfunc ``model``; when ``register``, register it as ``name``.

    Call inside the run (and inside ``sqlite_write_lock``). Returns (model_info, version or None); the
    caller marks the version ``challenger`` with ``set_challenger`` once the run has ended.
    """
    import mlflow

    info = retry_locked(mlflow.pyfunc.log_model)(
        name="model", python_model=python_model, signature=signature, input_example=input_example,
        registered_model_name=name if register else None)
    version = getattr(info, "registered_model_version", None)
    return info, None if version is None else str(version)


def _run_metric(run_id: str, metric: str) -> float | None:
    from mlflow import MlflowClient

    return MlflowClient().get_run(run_id).data.metrics.get(metric)


def promote(name: str, metric: str, higher_is_better: bool, version: str | int | None = None) -> Promotion:
    """Move ``production`` to ``version`` (default: the challenger) when its validation ``metric`` is no worse.

    The comparison reads the metric from each version's run, so it uses exactly what training logged
    on validation data. The decision and its reason are written as tags on the candidate version.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    candidate = client.get_model_version(name, str(version)) if version else version_by_alias(name, CHALLENGER)
    if candidate is None:
        raise LookupError(f"model {name!r} has no challenger version to promote; train and register one first")
    current = version_by_alias(name, PRODUCTION)
    new_value = _run_metric(candidate.run_id, metric)
    if current is None:
        promoted, reason = True, "no production version yet"
    elif current.version == candidate.version:
        promoted, reason = False, f"version {candidate.version} is already production"
    else:
        old_value = _run_metric(current.run_id, metric)
        if new_value is None:
            promoted, reason = False, f"candidate has no {metric} metric"
        elif old_value is None:
            promoted, reason = True, f"production v{current.version} has no {metric}; candidate {metric}={new_value:.6g}"
        else:
            better = new_value >= old_value if higher_is_better else new_value <= old_value
            cmp = ">=" if higher_is_better else "<="
            verdict = "" if better else "not "
            promoted = better
            reason = f"{metric} {new_value:.6g} {verdict}{cmp} production v{current.version} {old_value:.6g}"
    with sqlite_write_lock():
        if promoted:
            retry_locked(client.set_registered_model_alias)(name, PRODUCTION, candidate.version)
        retry_locked(client.set_model_version_tag)(name, candidate.version, "promotion", reason)
    return Promotion(name, str(candidate.version), promoted, reason, current.version if current else None)
