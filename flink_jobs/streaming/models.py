"""Production models per series, loaded lazily from the MLflow registry and cached in memory and on disk.

``ModelCache.get(series_id)`` returns the detector behind ``models:/<family>-<series>@production``.
It asks the registry again every ``refresh_s`` and swaps in a new production version when the
alias moved. When the registry cannot be reached it keeps serving the last loaded version, or the
copy kept under ``cache_dir`` (written after every successful load), and reports it through
``on_event('registry_unreachable', ...)``; when the registry answers that there is no production
version it returns None (the caller dead-letters) and asks again after ``missing_retry_s``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.naming import registry_name  # noqa: F401 - re-exported for the operators

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    name: str
    version: str
    detector: object
    origin: str  # 'registry' or 'disk'
    checked_at: float


class NoProductionModel(LookupError):
    pass


class ModelCache:
    def __init__(self, family: str, tracking_uri: str, registry_uri: str = "", alias: str = "production",
                 cache_dir: str = "", refresh_s: float = 60.0, missing_retry_s: float = 30.0,
                 on_event: Callable[[str, str], None] | None = None,
                 on_change: Callable[[ModelCache], None] | None = None):
        self.family = family
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.alias = alias
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.refresh_s = refresh_s
        self.missing_retry_s = missing_retry_s
        self.on_event = on_event or (lambda kind, msg: None)
        self._models: dict[str, Loaded] = {}
        self._missing: dict[str, float] = {}
        self._why: dict[str, str] = {}
        self._client = None
        self.on_change = on_change  # called after a model is loaded/swapped/dropped or reachability flips
        self.registry_reachable: bool | None = None  # None: not asked yet

    # -- registry access -------------------------------------------------------------------------
    def _mlflow_client(self):
        if self._client is None:
            import mlflow
            from mlflow import MlflowClient

            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.registry_uri)
            self._client = MlflowClient(self.tracking_uri, self.registry_uri)
        return self._client

    def _production_version(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        try:
            return str(self._mlflow_client().get_model_version_by_alias(name, self.alias).version)
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(exc).lower():
                raise NoProductionModel(f"{name}@{self.alias}: {exc.message if hasattr(exc, 'message') else exc}") from exc
            raise

    def _load_version(self, name: str, version: str):
        import mlflow

        self._mlflow_client()
        # the version the alias pointed at a moment ago: the same model as models:/<name>@<alias>
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        return model.unwrap_python_model().detector

    # -- disk cache ------------------------------------------------------------------------------
    def _disk_path(self, name: str) -> Path | None:
        return self.cache_dir / f"{name}.pkl" if self.cache_dir else None

    def _save_disk(self, name: str, version: str, detector) -> None:
        path = self._disk_path(name)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(pickle.dumps({"name": name, "version": version, "detector": detector}))
            tmp.replace(path)
            path.with_suffix(".json").write_text(json.dumps({"name": name, "version": version,
                                                             "saved_at": time.time()}))
        except OSError as exc:
            log.warning("could not write model cache %s: %s", path, exc)

    def _load_disk(self, name: str) -> Loaded | None:
        path = self._disk_path(name)
        if path is None or not path.exists():
            return None
        data = pickle.loads(path.read_bytes())
        return Loaded(name, str(data["version"]), data["detector"], "disk", time.monotonic())

    # -- public ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict]:
        """What is served now: registered name -> {"version", "source": "registry" | "disk_cache"}."""
        return {name: {"version": m.version, "source": "disk_cache" if m.origin == "disk" else "registry"}
                for name, m in sorted(self._models.items())}

    def _changed(self, before: dict, reachable_before: bool | None) -> None:
        if self.on_change is not None and (self.snapshot() != before or self.registry_reachable != reachable_before):
            try:
                self.on_change(self)
            except Exception as exc:  # noqa: BLE001 - status reporting must never stop scoring
                log.warning("model status callback failed: %s", exc)

    def why_missing(self, series_id: str) -> str:
        """Reason code of the last ``get`` that returned None for this series."""
        return self._why.get(registry_name(self.family, series_id), "no_production_model")

    def get(self, series_id: str) -> Loaded | None:
        name = registry_name(self.family, series_id)
        now = time.monotonic()
        current = self._models.get(name)
        if current is not None and now - current.checked_at < self.refresh_s:
            return current
        if current is None and now - self._missing.get(name, -1e18) < self.missing_retry_s:
            return None
        before, reachable_before = self.snapshot(), self.registry_reachable
        try:
            return self._refresh(name, current, now)
        finally:
            self._changed(before, reachable_before)

    def _refresh(self, name: str, current: Loaded | None, now: float) -> Loaded | None:
        try:
            version = self._production_version(name)
            self.registry_reachable = True
            if current is None or current.version != version or current.origin != "registry":
                detector = self._load_version(name, version)
                current = Loaded(name, version, detector, "registry", now)
                self._save_disk(name, version, detector)
                self.on_event("model_loaded", f"{name} v{version}")
                log.info("loaded %s v%s from the registry", name, version)
            current.checked_at = now
            self._models[name] = current
            self._missing.pop(name, None)
            return current
        except NoProductionModel as exc:
            self.registry_reachable = True  # it answered: there is no such alias
            self._missing[name] = now
            self._why[name] = "no_production_model"
            self._models.pop(name, None)
            self.on_event("no_production_model", str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - any failure to reach the registry/artifacts
            self.registry_reachable = False
            msg = f"registry unreachable for {name}: {type(exc).__name__}: {str(exc)[:200]}"
            fallback = current or self._load_disk(name)
            if fallback is None:
                log.warning("%s; no cached copy, rows of this series are dead-lettered", msg)
                self._missing[name] = now
                self._why[name] = "registry_unreachable"
                self.on_event("registry_unreachable", msg)
                return None
            log.warning("%s; keep using %s v%s (%s)", msg, name, fallback.version, fallback.origin)
            fallback.checked_at = now
            self._models[name] = fallback
            self.on_event("registry_unreachable", msg)
            return fallback
