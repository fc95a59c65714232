"""The Flink cleaning job against the messy writer's ground truth, on synthetic data and real slices."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flink_jobs import clean_job
from serving.sources import SourceConfig, series_file_name
from training.data import hydro, smd
from training.data.messy import MessyRates, write_messy
from training.data.raw_sources import smd_timestamps

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHECKED = ("blank_line", "missing_columns", "extra_columns", "unknown_series", "bad_timestamp", "non_numeric",
           "nan_inf", "nodata", "duplicate", "conflicting_duplicate", "gaps", "rows_in", "rows_out", "series_out")


def _synthetic(seed: int = 1):
    rng = np.random.default_rng(seed)
    cfg = SourceConfig(name="syn", value_names=["a", "b", "c"], series=["s1", "site/x"], interval_ms=60_000,
                       nodata_codes=[-9999.0, 7999.0], naive_utc_offset_minutes=-420)
    series = {}
    for sid in cfg.series:
        ts = np.delete(smd_timestamps(1500), [100, 101, 700])  # natural gaps
        values = rng.normal(size=(len(ts), 3)).round(4)
        values[10, 1] = np.nan
        values[20, 0] = 7999
        series[sid] = (ts, values)
    return cfg, series


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory, flink_batch_env):
    root = tmp_path_factory.mktemp("clean-syn")
    cfg, series = _synthetic()
    truth = write_messy(cfg, series, root / "raw", seed=3, rates=MessyRates(rows_per_file=1000))
    report = clean_job.run(root / "raw", root / "out", t_env=flink_batch_env)
    return cfg, series, truth, report, root


def test_report_equals_ground_truth(synthetic_run):
    _, _, truth, report, _ = synthetic_run
    assert len(truth.files) > 1  # rolled files
    assert {k: report["counts"][k] for k in CHECKED} == {k: truth.counts[k] for k in CHECKED}


def test_cleaned_series_are_sorted_unique_and_exact(synthetic_run):
    cfg, series, truth, _, root = synthetic_run
    rejects = [json.loads(line) for line in (root / "out" / "syn" / "rejects.jsonl").read_text().splitlines()]
    conflicted = {(r["line"].split(",")[0]) for r in rejects if r["reason"] == "conflicting_duplicate"}
    assert conflicted <= set(cfg.series)
    for sid, (ts, values) in series.items():
        df = pd.read_csv(root / "out" / "syn" / f"{series_file_name(sid)}.csv")
        assert list(df.columns) == ["ts", "a", "b", "c", "gap_before"]
        assert df["ts"].is_monotonic_increasing and df["ts"].is_unique
        truth_df = pd.DataFrame(values, columns=["a", "b", "c"]).assign(ts=ts).set_index("ts")
        got = df.set_index("ts")[["a", "b", "c"]]
        assert set(got.index) <= set(truth_df.index)
        np.testing.assert_allclose(got.to_numpy(), truth_df.loc[got.index].to_numpy(), rtol=0, atol=1e-9)
        assert not np.isin(got.to_numpy(), cfg.nodata_codes).any()
        gaps = np.diff(df["ts"].to_numpy()) > 90_000
        assert df["gap_before"].to_numpy()[1:].tolist() == gaps.tolist()


def test_every_rejected_row_has_a_reason_and_nothing_is_lost(synthetic_run):
    _, _, truth, report, root = synthetic_run
    rejects = [json.loads(line) for line in (root / "out" / "syn" / "rejects.jsonl").read_text().splitlines()]
    assert all(r["reason"] and r["source"] == "syn" for r in rejects)
    c = report["counts"]
    assert c["rows_in"] == c["rows_out"] + len(rejects) + c["duplicate"]


def _digest(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.iterdir()):
        data = p.read_bytes()
        if p.name == "rejects.jsonl":
            data = b"\n".join(sorted(data.splitlines()))
        if p.name == "report.json":
            data = json.dumps(json.loads(data)["counts"], sort_keys=True).encode()
        out[p.name] = hashlib.sha256(data).hexdigest()
    return out


def test_rerun_replaces_and_gives_identical_output(synthetic_run, flink_batch_env):
    _, _, _, _, root = synthetic_run
    before = _digest(root / "out" / "syn")
    clean_job.run(root / "raw", root / "out", t_env=flink_batch_env)
    assert _digest(root / "out" / "syn") == before
    assert [p.name for p in (root / "out").iterdir()] == ["syn"]  # no staging left behind


@pytest.mark.skipif(not (SHARED / "smd").is_dir() or not (SHARED / "hydro").is_dir(), reason="shared data absent")
def test_real_slices_smd_and_logan_river(tmp_path, flink_batch_env):
    """A slice of one SMD machine (38 channels) and of one Logan River file (NULLs, -9999/7999 codes)."""
    from training.data.raw_sources import SMD_INTERVAL_MS, smd_channel_names

    train = smd.load_machine(SHARED / "smd", "machine-1-2", with_test=False).train[:800]
    cfg = SourceConfig(name="smd", value_names=smd_channel_names(), series=["machine-1-2"],
                       interval_ms=SMD_INTERVAL_MS, nodata_codes=[-9999.0])
    truth = write_messy(cfg, {"machine-1-2": (smd_timestamps(800), train.astype(float))}, tmp_path / "smd", seed=5)
    report = clean_job.run(tmp_path / "smd", tmp_path / "out", t_env=flink_batch_env)
    assert {k: report["counts"][k] for k in CHECKED} == {k: truth.counts[k] for k in CHECKED}

    df = hydro.read_file(SHARED / "hydro" / "LRO_data" / "MainStreet2019.csv")
    raw = hydro.series(df, "stage").iloc[:1500]
    cfg = SourceConfig(name="hydro", value_names=["value"], series=["MainStreet/stage", "MainStreet/temp"],
                       interval_ms=15 * 60_000, nodata_codes=list(hydro.NODATA_CODES), naive_utc_offset_minutes=-420)
    temp = hydro.series(df, "temp").iloc[:1500]
    assert temp["raw"].isin(hydro.NODATA_CODES).any()  # the slice holds the file's own 7999 codes
    series = {"MainStreet/stage": (raw["ts"].to_numpy(), raw["raw"].to_numpy()[:, None]),
              "MainStreet/temp": (temp["ts"].to_numpy(), temp["raw"].to_numpy()[:, None])}
    truth = write_messy(cfg, series, tmp_path / "hydro", seed=6)
    report = clean_job.run(tmp_path / "hydro", tmp_path / "out", t_env=flink_batch_env)
    assert {k: report["counts"][k] for k in CHECKED} == {k: truth.counts[k] for k in CHECKED}
    assert truth.counts["nodata"] > 0
