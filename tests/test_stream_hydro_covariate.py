"""The hydro job's covariate join (``covariates = stage=temp``): the stream scores each stage reading with the
same site's temperature of its timestamp, as batch ``score_series(..., covariate=...)`` does."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flink_jobs.streaming.blocks import covariate_routes, split_by_series, with_covariate_copies
from flink_jobs.streaming.covariates import add_covariates, cov_state, ready
from flink_jobs.streaming.records import Row

RECORD = "\n".join(["S/stage,1,1.0", "S/temp,1,0.1", "S/stage,2,1.1", "T/temp,1,3.0", "S/cond,1,9", "S/temp,2,0.2"])


def test_routes_parse_and_reject():
    assert covariate_routes(("stage=temp", " discharge = temp ")) == {"temp": ("stage", "discharge")}
    assert covariate_routes(()) == {}
    for bad in ("stage", "=temp", "stage=", "a/stage=temp", "temp=temp"):
        with pytest.raises(ValueError):
            covariate_routes((bad,))


def test_covariate_blocks_are_copied_first_to_their_dependents():
    blocks = with_covariate_copies(split_by_series(RECORD), covariate_routes(("stage=temp",)))
    assert blocks == [("S/stage", "S/temp,1,0.1\nS/temp,2,0.2"), ("T/stage", "T/temp,1,3.0"),
                      ("S/stage", "S/stage,1,1.0\nS/stage,2,1.1"), ("S/temp", "S/temp,1,0.1\nS/temp,2,0.2"),
                      ("T/temp", "T/temp,1,3.0"), ("S/cond", "S/cond,1,9")]
    assert with_covariate_copies(split_by_series(RECORD), {}) == split_by_series(RECORD)


def test_java_splitter_routes_like_python(flink_stream_env):
    from flink_jobs.streaming.blocks import _with_java_routes
    from flink_jobs.streaming.ordered_files import _javac, series_block_splitter

    if _javac() is None:
        pytest.skip("no JDK: the Python splitter is used")
    routes = covariate_routes(("stage=temp", "discharge=temp"))
    java = _with_java_routes(series_block_splitter(flink_stream_env), routes)
    for record in (RECORD, "S/temp,1,0.1", "S/stage,1,1.0", ""):
        got = [tuple(b) for b in java.blocksOf(record)]
        assert got == with_covariate_copies(split_by_series(record), routes)
    plain = series_block_splitter(flink_stream_env)  # no routes: the split is unchanged
    assert [tuple(b) for b in plain.blocksOf(RECORD)] == split_by_series(RECORD)


def _rows(*stamps):
    return [Row("S/stage", t, (float(t),), 0) for t in stamps]


def _cov(*pairs):
    return [Row("S/temp", t, (v,), 0) for t, v in pairs]


def test_rows_wait_for_their_covariate_in_order():
    st = {}
    cs = cov_state(st)
    add_covariates(cs, _cov((1, 0.1)))
    out = ready(cs, _rows(1, 2, 3), 0, 4)
    assert [(r.ts, c) for r, c in out] == [(1, 0.1)]  # 2 and 3 wait: their temperature may come next
    add_covariates(cs, _cov((2, 0.2)))
    assert [(r.ts, c) for r, c in ready(cs, [], 0, 4)] == [(2, 0.2)]
    add_covariates(cs, _cov((5, 0.5)))  # a reading after 3: the one at 3 is missing
    assert [(r.ts, c) for r, c in ready(cs, _rows(4, 5), 0, 4)] == [(3, None), (4, None), (5, 0.5)]
    assert cs["wait"] == [] and cs["values"] == {} and cs["done"] == 5
    add_covariates(cs, _cov((5, 9.9), (4, 9.9)))  # readings for scored times are dropped
    assert cs["values"] == {}


def test_wait_is_bounded_by_rows_and_end_of_input():
    cs = cov_state({})
    assert [r.ts for r, _ in ready(cs, _rows(1, 2, 3, 4), 0, 4)] == []
    assert [(r.ts, c) for r, c in ready(cs, _rows(5), 0, 4)] == [(1, None)]  # five would wait: the oldest goes
    assert [r.ts for r, _ in ready(cs, [], 0, 4, final=True)] == [2, 3, 4, 5]
    assert [r.ts for r, _ in ready(cov_state({}), _rows(1, 2), 0, 0)] == [1, 2]  # 0: no row waits
    cs = cov_state({})
    add_covariates(cs, _cov((10, 1.0)))  # with an out-of-orderness bound, a newer reading must be that much newer
    assert [r.ts for r, _ in ready(cs, _rows(8, 9), 1, 4)] == [8, 9]
    assert [r.ts for r, _ in ready(cov_state({}) | {}, _rows(8), 0, 4)] == []


# ---- the job, end to end -------------------------------------------------------------------------------------
SITE = "covtest"
SENSOR, TEMP = f"{SITE}/stage", f"{SITE}/temp"
HISTORY, STREAM = 1000, 240
COLD = range(80, 150)  # stream rows with the water below the ice threshold


@pytest.fixture(scope="module")
def ice_model():
    from training.data.synthetic_hydro import generate
    from training.hydro.pipeline import fit_sensor, promote_sensor

    df = generate(HISTORY + STREAM, seed=7, n_each=1)
    hist = df.iloc[:HISTORY][["ts", "value"]].dropna()
    result = fit_sensor(SENSOR, hist, order=(1, 1, 1), refit_order=False, detector_config="d2+ice")
    promote_sensor(SENSOR)
    assert result["detector"].ice_temp is not None
    return result, df.iloc[HISTORY:].reset_index(drop=True)


def _landing(stream, path):
    """Stage and temp lines; temp comes two rows after its stage reading in part of the stream, one temp
    reading is missing and one is a no-data code."""
    ts = stream["ts"].to_numpy(np.int64)
    temp = 4.0 + 3.0 * np.cos(np.arange(len(ts)) / 25.0)
    temp[list(COLD)] = -0.1
    lines, later = [], []
    temps = {}
    for i, t in enumerate(ts):
        v = stream["value"][i]
        lines.append(f"{SENSOR},{t},{'NULL' if math.isnan(v) else round(float(v), 4)}")
        if i == 120:
            continue  # no temperature at this time
        tv = -9999 if i == 60 else round(float(temp[i]), 3)
        if tv != -9999:
            temps[int(t)] = tv
        (later if 70 <= i < 160 else lines).append(f"{TEMP},{t},{tv}")
        while len(later) > 2 or (later and i >= 160):
            lines.append(later.pop(0))
    lines += later
    path.write_text("\n".join(lines) + "\n")
    return temps


def _run(env, cfg):
    from flink_jobs.streaming import hydro_job
    from flink_jobs.streaming.sinks import read_records

    hydro_job.build(env, cfg=cfg)
    env.execute("test-hydro-covariate")
    points = [r for r in read_records(cfg.scores_dir) if r["series_id"] == SENSOR]
    return sorted(points, key=lambda r: r["window_start"])


@pytest.mark.slow
def test_stream_with_temperature_equals_batch(ice_model, flink_stream_env, tmp_path, monkeypatch):
    from flink_jobs.streaming import ordered_files
    from flink_jobs.streaming.config import from_env

    result, stream = ice_model
    det = result["detector"]
    land = tmp_path / "landing"
    land.mkdir()
    temps = _landing(stream, land / "part-0.csv")
    base = dict(landing_dir=str(land), bounded=True, every_window=True, checkpoint_interval_ms=500,
                line_block=16, model_cache_dir=str(tmp_path / "cache"))
    joined = _run(flink_stream_env, from_env("hydro", out_dir=str(tmp_path / "joined"), covariates=("stage=temp",),
                                             **base))
    plain = _run(flink_stream_env, from_env("hydro", out_dir=str(tmp_path / "plain"), **base))
    monkeypatch.setattr(ordered_files, "series_block_splitter", lambda *a, **k: None)  # the Python splitter
    joined_py = _run(flink_stream_env, from_env("hydro", out_dir=str(tmp_path / "joined_py"),
                                                covariates=("stage=temp",), **base))
    x = stream["value"].round(4).to_numpy(float)  # as written to the landing file
    ok = np.isfinite(x)
    t = stream["ts"].to_numpy(np.int64)[ok]
    cov = np.array([temps.get(int(s), np.nan) for s in t])
    with_temp = det.score_series(x[ok], t, covariate=cov)
    without = det.score_series(x[ok], t)
    assert with_temp["anomalous"].sum() > without["anomalous"].sum() + 20  # the ice rule flags the cold stretch
    for points, batch in ((joined, with_temp), (joined_py, with_temp), (plain, without)):
        assert [p["window_start"] for p in points] == t.tolist()
        assert [p["anomalous"] for p in points] == batch["anomalous"].tolist()
        np.testing.assert_allclose([p["forecast"] for p in points], batch["forecast"], rtol=1e-6)


class _Det:
    ice_temp, min_probability = 0.5, 0.5

    def __init__(self):
        self.seen = []

    def new_state(self):
        return {}

    def update(self, state, ts, value, covariate=None):
        self.seen.append((ts, covariate))
        return state, {"anomaly_probability": 0.0, "anomalous": False, "candidate": False, "forecast": value,
                       "lower": value, "upper": value, "verified": False}


def _operator(det, covariates):
    from types import SimpleNamespace

    from flink_jobs.streaming.config import from_env
    from flink_jobs.streaming.hydro_job import OrderAndScore

    op = OrderAndScore(from_env("hydro", covariates=covariates, every_window=False))
    loaded = SimpleNamespace(detector=det, version="1", name="hydro-S-stage")
    op.models = SimpleNamespace(get=lambda key: loaded)
    op.counters = SimpleNamespace(inc=lambda *a: None, dead=lambda *a: None)
    op.joined = bool(covariates)
    return op


def test_state_moves_between_jobs_with_and_without_covariates():
    import pickle

    from flink_jobs.streaming.windowing import new_state

    det = _Det()
    st = {"order": new_state(), "version": None, "detector_state": None}
    joined = _operator(det, ("stage=temp",))
    add_covariates(cov_state(st), _cov((1, 0.1)))
    list(joined._score("S/stage", st, _rows(1, 2)))
    assert det.seen == [(1, 0.1)]  # 2 waits for its temperature
    st = pickle.loads(pickle.dumps(st))  # a savepoint, restored into a job without the setting
    list(_operator(det, ())._score("S/stage", st, _rows(3)))
    assert det.seen == [(1, 0.1), (2, None), (3, None)] and "cov" not in st
    list(joined._score("S/stage", st, _rows(4)))  # and back: a state without the covariate part
    assert det.seen[-1] == (3, None) and st["cov"]["wait"] == [tuple(_rows(4)[0])]


@pytest.mark.slow
def test_savepoint_of_a_joined_job_restores_into_a_job_without_the_setting(ice_model, tmp_path):
    """A real stop-with-savepoint: job 1 joins temperatures, job 2 is restored from its savepoint without the
    setting. Every point is scored once, and the verdicts and forecasts equal batch scoring with the
    temperatures of job 1's points only: the detector state (ARIMA recursion, window, Markov state) came
    across, and the joined state's covariate part does not trouble a job that does not use it."""
    from flink_jobs.env import stream_env
    from flink_jobs.streaming import hydro_job
    from flink_jobs.streaming.config import from_env
    from tests.flink_helpers import stop_with_savepoint, wait_for_records

    result, stream = ice_model
    det = result["detector"]
    x = stream["value"].round(4).to_numpy(float)
    ts = stream["ts"].to_numpy(np.int64)
    temp = np.where(np.isin(np.arange(len(ts)), list(COLD)), -0.1, 4.0)
    cut = 120  # inside the cold stretch: the ice rule applies before the cut only
    land = tmp_path / "landing"
    land.mkdir()

    def lines(rows):  # each temperature right after its stage reading: nothing waits at the cut
        out = []
        for i in rows:
            out.append(f"{SENSOR},{ts[i]},{'NULL' if math.isnan(x[i]) else x[i]}")
            out.append(f"{TEMP},{ts[i]},{temp[i]}")
        return "\n".join(out) + "\n"

    def job(out: str, savepoint: str | None, covariates: tuple):
        cfg = from_env("hydro", landing_dir=str(land), out_dir=str(tmp_path / out), every_window=True,
                       checkpoint_interval_ms=300, discovery_interval_ms=100, covariates=covariates,
                       model_cache_dir=str(tmp_path / "cache"))
        env = stream_env(2, extra={"execution.savepoint.path": savepoint} if savepoint else None)
        hydro_job.build(env, cfg=cfg)
        return cfg, env.execute_async("test-hydro-covariate-savepoint")

    ok = np.isfinite(x)
    n_first = int(ok[:cut].sum())
    cfg1, client = job("joined", None, ("stage=temp",))
    (land / "part-0.csv").write_text(lines(range(cut)))
    first = [r for r in wait_for_records(cfg1.scores_dir, n_first) if r["series_id"] == SENSOR]
    savepoint = stop_with_savepoint(client, (tmp_path / "savepoints").as_uri())
    cfg2, client = job("plain", savepoint, ())
    try:
        (land / "part-1.csv").write_text(lines(range(cut, len(ts))))
        second = [r for r in wait_for_records(cfg2.scores_dir, int(ok[cut:].sum())) if r["series_id"] == SENSOR]
    finally:
        client.cancel().result()
    assert len(first) == n_first
    points = sorted(first + second, key=lambda r: r["window_start"])
    batch = det.score_series(x[ok], ts[ok], covariate=np.where(np.arange(len(ts)) < cut, temp, np.nan)[ok])
    assert [p["window_start"] for p in points] == ts[ok].tolist()  # each point once
    assert [p["anomalous"] for p in points] == batch["anomalous"].tolist()
    np.testing.assert_allclose([p["forecast"] for p in points], batch["forecast"], rtol=1e-6)
    stage_only = det.score_series(x[ok], ts[ok])
    assert batch["anomalous"].sum() > stage_only["anomalous"].sum()  # the temperatures of job 1 mattered
