"""The hydro streaming job: per-sensor detector state in keyed state gives the batch verdicts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from flink_jobs import replay
from flink_jobs.streaming import hydro_job
from flink_jobs.streaming.config import from_env
from flink_jobs.streaming.sinks import read_records
from flink_jobs.streaming.status import read_status
from serving.settings import get_settings

pytestmark = pytest.mark.slow

SENSOR = "streamtest/stage"  # own registry name (hydro-streamtest-stage)
HISTORY, STREAM = 1500, 400


@pytest.fixture(scope="module")
def hydro_model():
    from training.data.hydro import read_file, series
    from training.hydro.pipeline import fit_sensor, promote_sensor

    path = sorted(get_settings().hydro_dir.rglob("MainStreet*.csv"))[0]
    s = series(read_file(path), "stage")
    hist = s.iloc[:HISTORY][["ts", "value"]].dropna()
    result = fit_sensor(SENSOR, hist, order=(1, 1, 1), refit_order=False)
    promote_sensor(SENSOR)
    return result


def test_hydro_stream_equals_batch(hydro_model, flink_stream_env, tmp_path):
    lines = [replay.Line(x.ts, SENSOR, x.text.replace("MainStreet/stage", SENSOR, 1))
             for x in replay.hydro_lines(get_settings().hydro_dir, "MainStreet", "stage", HISTORY, STREAM)]
    land = tmp_path / "landing"
    land.mkdir()
    (land / "part-0.csv").write_text("\n".join(x.text for x in lines) + "\nstreamtest/stage,not-a-time,1.0\n")
    cfg = from_env("hydro", landing_dir=str(land), out_dir=str(tmp_path / "out"), bounded=True,
                   every_window=True, checkpoint_interval_ms=500, model_cache_dir=str(tmp_path / "cache"))
    hydro_job.build(flink_stream_env, cfg=cfg)
    flink_stream_env.execute("test-hydro-stream")
    points = sorted(read_records(cfg.scores_dir), key=lambda r: r["window_start"])
    dead = read_records(cfg.dead_dir)
    reasons = Counter(d["reason"] for d in dead)
    assert reasons["bad_timestamp"] == 1 and set(reasons) <= {"bad_timestamp", "nodata"}
    assert len(points) + reasons["nodata"] == STREAM
    det = hydro_model["detector"]
    batch = det.score_series(np.array([p["value"] for p in points]), np.array([p["window_start"] for p in points]))
    assert [p["anomalous"] for p in points] == list(batch["anomalous"])
    np.testing.assert_allclose([p["forecast"] for p in points], batch["forecast"], rtol=1e-6)
    alerts = read_records(cfg.alerts_dir)
    assert len(alerts) == int(batch["anomalous"].sum())
    assert {a["model_version"] for a in points} == {str(hydro_model["model_version"])}
    status = read_status(cfg.status_path)  # the scoring operator's status: it loaded the model lazily
    assert status and {r["family"] for r in status.values()} == {"hydro"}
    served = [r["models"] for r in status.values() if r["models"]]
    assert served == [{"hydro-streamtest-stage": {"version": str(hydro_model["model_version"]), "source": "registry"}}]
