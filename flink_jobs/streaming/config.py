"""Knobs of the streaming jobs: environment variables ``SG_STREAM_*`` over defaults from ``get_settings()``.

Every field can also be given on the job's command line (``--help`` of ``lstm_job``/``hydro_job``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from serving.settings import get_settings


def _env(name: str, default, cast):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if cast is bool:
        return value.strip().lower() in ("1", "true", "yes", "on")
    return cast(value)


@dataclass(frozen=True)
class StreamConfig:
    """One job's configuration; ``from_env()`` reads the environment, ``with_(...)`` overrides fields."""

    family: str = "lstm_ed"  # model family: registered names are '<family>-<series>'
    n_values: int = 38  # values per landing line (38 SMD metrics; 1 for a sensor)
    series: tuple[str, ...] = ()  # accepted series ids; empty: any id (unknown ids then fail at model lookup)
    source: str = "file"  # 'file' (landing dir), 'kafka', or 'module:function' returning a LineSource
    landing_dir: str = ""
    bounded: bool = False  # file source: read the files present, then finish (tests, bench ceilings)
    discovery_interval_ms: int = 1000
    ordered_files: bool = True  # file source: hand out queued files in path (= publication) order
    # file source: each discovery stats only files not seen before and lists a folder only when it changed
    # (Java IncrementalFileEnumerator); Flink's own re-reads every landed file's status each time
    incremental_listing: bool = True
    line_block: int = 4096  # file source: lines per record (one Java->Python hand-over per block); 1: per line
    kafka_bootstrap: str = "localhost:9092"
    kafka_topic: str = "landing"
    kafka_group: str = "streamguard"
    jars: tuple[str, ...] = ()  # extra connector jars (file paths), e.g. flink-sql-connector-kafka
    out_dir: str = ""  # alerts/, scores/, dead_letters/ are written below
    status_dir: str = ""  # scoring operators' status files; empty: <out_dir>/status
    every_window: bool = False  # also write every scored window/point to scores/
    out_of_orderness_ms: int = 0  # rows may arrive this much later than newer rows of the same series
    naive_utc_offset_minutes: int = 0  # zone of timestamps written without one
    nodata_codes: tuple[float, ...] = ()  # values meaning 'no reading' (dead letter 'nodata'), e.g. -9999
    batch_size: int = 64  # most windows of one series per model call (the windows of one input block)
    max_wait_ms: int = 0  # >0: a remainder under batch_size waits this long for more windows (a timer)
    checkpoint_interval_ms: int = 2000
    # PyFlink hands elements to the Python worker in bundles and emits their results when a bundle ends:
    # bundle time bounds the added latency (Flink's default, 1000 ms, dominated it), size the batching
    bundle_size: int = 1000
    bundle_time_ms: int = 10
    # 'thread': Python runs inside the TaskManager JVM (PEMJA) and gets each element as it arrives, no
    # bundles; 'process': Python workers beside the JVM fed in bundles (PyFlink's default). Session 6: thread
    # mode scored 1.4x the windows/s at lower latency (docs/streaming.md); bundle settings apply to 'process'
    python_mode: str = "thread"
    buffer_timeout_ms: int = 5  # network buffers between operators are sent at least this often (Flink: 100)
    restart_attempts: int = 0  # >0: fixed-delay restarts (attempts, restart_delay_ms); 0: Flink's default
    restart_delay_ms: int = 1000
    model_refresh_s: float = 60.0  # how often a key re-checks which version is @production
    missing_model_retry_s: float = 30.0  # how long 'no production model' is remembered before asking again
    model_cache_dir: str = ""  # last loaded detectors, used when the registry is unreachable
    tracking_uri: str = ""
    registry_uri: str = ""
    alias: str = "production"
    rest_url: str = ""  # paper's design (bench only): score each window by POSTing it to this server
    # hydro: "dependent=covariate" variable pairs, e.g. "stage=temp": each site's temp readings are the covariate
    # (the ice rule's water temperature) of its stage sensor; empty: no covariate, as before (docs/streaming.md)
    covariates: tuple[str, ...] = ()
    covariate_wait_rows: int = 4  # at most this many rows of a sensor wait for their same-time covariate; 0: none
    fail_after_windows: int = 0  # fault injection for the exactly-once test: fail once after N windows
    extra: dict = field(default_factory=dict)

    def with_(self, **changes) -> StreamConfig:
        return replace(self, **changes)

    @property
    def alerts_dir(self) -> Path:
        return Path(self.out_dir) / "alerts"

    @property
    def scores_dir(self) -> Path:
        return Path(self.out_dir) / "scores"

    @property
    def status_path(self) -> Path:
        return Path(self.status_dir) if self.status_dir else Path(self.out_dir) / "status"

    @property
    def dead_dir(self) -> Path:
        return Path(self.out_dir) / "dead_letters"


def from_env(family: str = "lstm_ed", **overrides) -> StreamConfig:
    """Defaults, then ``SG_STREAM_<FIELD>`` variables, then ``overrides``."""
    s = get_settings()
    base = StreamConfig(
        family=family,
        n_values=38 if family == "lstm_ed" else 1,
        nodata_codes=() if family == "lstm_ed" else (-9999.0, 7999.0),
        landing_dir=str(s.landing_dir),
        out_dir=str(s.work_dir / "stream" / family),
        model_cache_dir=str(s.work_dir / "model_cache"),
        tracking_uri=s.mlflow_tracking_uri,
        registry_uri=s.mlflow_registry_uri,
    )
    values = {}
    for f in fields(StreamConfig):
        if f.name in ("family", "extra"):
            continue
        current = getattr(base, f.name)
        name = f"SG_STREAM_{f.name.upper()}"
        if isinstance(current, tuple):
            raw = os.environ.get(name)
            if raw:
                items = [x.strip() for x in raw.split(",") if x.strip()]
                values[f.name] = tuple(float(x) for x in items) if f.name == "nodata_codes" else tuple(items)
        else:
            values[f.name] = _env(name, current, type(current))
    values.update(overrides)
    for key in ("series", "jars", "covariates"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    return replace(base, **values)
