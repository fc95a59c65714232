"""Registry aliases every layer may move: ``production``/``challenger`` lookups, rollback, and the SQLite
writer lock. Lives in ``serving`` because both training (promotion) and the deploy CLI (rollback) need it,
and those two layers may not import each other.
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

from serving.settings import Settings, get_settings

PRODUCTION = "production"
CHALLENGER = "challenger"
T = TypeVar("T")


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


def version_by_alias(name: str, alias: str = PRODUCTION, client=None):
    """The ModelVersion behind ``name@alias`` or None when the alias is not set."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return (client or MlflowClient()).get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def rollback(name: str, client=None) -> Promotion:
    """Point ``production`` at the newest version older than the current production version."""
    from mlflow import MlflowClient

    client = client or MlflowClient()
    current = version_by_alias(name, PRODUCTION, client)
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
