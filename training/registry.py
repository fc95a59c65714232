"""MLflow tracking and registry helpers shared by every model family (one place for aliases and promotion).

Aliases, not the deprecated stages: a new version gets ``challenger``; ``promote`` moves ``production``
to it when its validation metric is at least as good as the current production version's (or when there
is no production version yet) and records why as tags on the version. Test labels are never consulted.
"""

from __future__ import annotations

import fcntl
import functools
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from serving.naming import registry_name  # noqa: F401 - re-exported: training code names models here
from serving.settings import Settings, get_settings

PRODUCTION = "production"
CHALLENGER = "challenger"
T = TypeVar("T")


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


@contextmanager
def sqlite_write_lock(settings: Settings | None = None):
    """Serialise writers of a SQLite tracking store across processes (mlflow PR #6490: 'database is locked').

    A no-op for server-backed stores (http, postgresql, mysql).
    """
    s = settings or get_settings()
    if not s.mlflow_tracking_uri.startswith("sqlite:"):
        yield
        return
    db_path = Path(s.mlflow_tracking_uri.split("sqlite:///", 1)[-1])
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def retry_locked(fn: Callable[..., T], attempts: int = 8, base_delay: float = 0.25) -> Callable[..., T]:
    """Retry a call that failed because SQLite was locked by another writer."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for i in range(attempts):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - mlflow wraps sqlite errors in several types
                if "locked" not in str(exc).lower() or i == attempts - 1:
                    raise
                time.sleep(base_delay * (2**i))
        raise AssertionError("unreachable")

    return wrapper


@dataclass
class Promotion:
    name: str
    version: str
    promoted: bool
    reason: str
    previous: str | None


def set_challenger(name: str, version: str | int) -> None:
    from mlflow import MlflowClient

    with sqlite_write_lock():
        retry_locked(MlflowClient().set_registered_model_alias)(name, CHALLENGER, str(version))


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


def version_by_alias(name: str, alias: str = PRODUCTION):
    """The ModelVersion behind ``name@alias`` or None when the alias is not set."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


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


def rollback(name: str) -> Promotion:
    """Point ``production`` at the newest version older than the current production version."""
    from mlflow import MlflowClient

    client = MlflowClient()
    current = version_by_alias(name, PRODUCTION)
    if current is None:
        raise LookupError(f"model {name!r} has no production version to roll back from")
    older = [
        v for v in client.search_model_versions(f"name='{name}'") if int(v.version) < int(current.version)
    ]
    if not older:
        raise LookupError(f"model {name!r} has no version older than v{current.version} to roll back to")
    target = max(older, key=lambda v: int(v.version))
    with sqlite_write_lock():
        retry_locked(client.set_registered_model_alias)(name, PRODUCTION, target.version)
        retry_locked(client.set_model_version_tag)(name, target.version, "promotion", f"rollback from v{current.version}")
    return Promotion(name, str(target.version), True, f"rollback from v{current.version}", current.version)
