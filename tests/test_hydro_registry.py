"""Hydro MLflow path: one run per sensor fit, registered pyfunc, challenger -> production, round trip."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from training import registry
from training.data.synthetic_hydro import generate
from training.hydro import pipeline


@pytest.fixture(scope="module")
def fitted():
    df = generate(2400, seed=11, n_each=1, train_fraction=0.5)
    hist, ev = df.iloc[:1200], df.iloc[1200:]
    r1 = pipeline.fit_sensor("SynthReg/stage", hist[["ts", "value"]], ev[["ts", "value", "label"]])
    p1 = pipeline.promote_sensor("SynthReg/stage")
    return df, hist, ev, r1, p1


def test_run_logs_params_metrics_artifacts(fitted):
    _, _, _, r1, p1 = fitted
    assert r1["model_name"] == "hydro-SynthReg-stage"
    run = mlflow.MlflowClient().get_run(r1["run_id"])
    assert {"order", "k", "window"} <= set(run.data.params)
    assert {"aic", "inertia", "silhouette", "val_mae", "state_count_0", "eval_full_f1"} <= set(run.data.metrics)
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(r1["run_id"])}
    assert {"transition_matrix.csv", "transition_heatmap.png", "fitted_series.png"} <= arts
    table = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=r1["run_id"], artifact_path="transition_matrix.csv"))
    assert list(table.columns) == ["from_state", "to_state", "count", "probability"]
    assert p1.promoted and p1.reason == "no production version yet"


def test_pyfunc_round_trip_through_registry(fitted):
    _, _, ev, r1, _ = fitted
    model = mlflow.pyfunc.load_model("models:/hydro-SynthReg-stage@production")
    got = model.predict(ev[["ts", "value"]].reset_index(drop=True))
    want = r1["detector"].score_series(ev["value"].to_numpy(), ev["ts"].to_numpy())
    np.testing.assert_array_equal(got["anomalous"].to_numpy(), want["anomalous"])
    np.testing.assert_allclose(got["forecast"].to_numpy(), want["forecast"])
    assert model.metadata.signature is not None
    det = model.unwrap_python_model().detector
    assert det.arima.order == r1["detector"].arima.order


def test_second_refit_becomes_challenger_and_promotion_follows_val_mae(fitted):
    df, hist, _, r1, _ = fitted
    r2 = pipeline.fit_sensor("SynthReg/stage", df.iloc[:1500][["ts", "value"]], refit_order=False)
    assert r2["detector"].arima.order == r1["detector"].arima.order  # order reused from production
    assert str(registry.version_by_alias("hydro-SynthReg-stage", "challenger").version) == r2["model_version"]
    p2 = pipeline.promote_sensor("SynthReg/stage")
    better = r2["metrics"]["val_mae"] <= r1["metrics"]["val_mae"]
    assert p2.promoted == better
    prod = str(registry.version_by_alias("hydro-SynthReg-stage", "production").version)
    assert prod == (r2["model_version"] if better else r1["model_version"])


def test_detector_config_travels_into_the_registered_model():
    df = generate(1600, seed=12, n_each=1, train_fraction=0.5)
    r = pipeline.fit_sensor("SynthCfg/stage", df.iloc[:1200][["ts", "value"]], detector_config="d1+local+daily")
    det = mlflow.pyfunc.load_model(f"models:/{r['model_name']}/{r['model_version']}").unwrap_python_model().detector
    assert (det.rough_order, det.local_sigma_points, det.recurrence_days) == (1, 96, 2)
    logged = mlflow.MlflowClient().get_run(r["run_id"]).data.params["detector_config"]
    assert logged == '{"local_sigma_points": 96, "recurrence_days": 2, "rough_order": 1}'
    with pytest.raises(ValueError, match="unknown hydro detector config"):
        pipeline.resolve_config("d9")


def test_registered_ice_model_takes_the_optional_covariate_column():
    df = generate(2000, seed=13, n_each=1, train_fraction=0.5)
    r = pipeline.fit_sensor("SynthIce/stage", df.iloc[:1200][["ts", "value"]], detector_config="d2+ice")
    model = mlflow.pyfunc.load_model(f"models:/{r['model_name']}/{r['model_version']}")
    ev = df.iloc[1200:][["ts", "value"]].reset_index(drop=True)
    cold = np.where(np.arange(len(ev)) % 200 < 100, 0.0, 8.0)  # water at 0 deg C half of the time
    got = model.predict(ev.assign(covariate=cold))
    want = r["detector"].score_series(ev["value"].to_numpy(), ev["ts"].to_numpy(), covariate=cold)
    np.testing.assert_array_equal(got["anomalous"].to_numpy(), want["anomalous"])
    plain = model.predict(ev)  # without the column: the stage-only verdicts
    assert got["anomalous"].sum() > plain["anomalous"].sum()
    cols = {c.name: c.required for c in model.metadata.signature.inputs.inputs}
    assert cols["covariate"] is False and cols["value"] is True


def test_dag_param_picks_the_sensor_entry_then_default():
    from training.hydro.dag_tasks import config_for

    params = {"detector_config": {"default": "d2+local", "TonyGrove/stage": {"rough_order": 1}}}
    assert config_for("TonyGrove/stage", params) == {"rough_order": 1}
    assert config_for("MainStreet/stage", params) == "d2+local"
    assert config_for("MainStreet/stage", {"bench_results": "/nonexistent/hydro_bench.json"}) is None


def test_dag_falls_back_to_the_bench_choice_for_the_site(tmp_path):
    from training.hydro.dag_tasks import config_for

    bench = tmp_path / "hydro_bench.json"
    bench.write_text(json.dumps({"results": {"TonyGrove stage": {"selected_config": "d1+local+alert"},
                                             "synthetic": {"selected_config": "d2+local"}}}))
    params = {"bench_results": str(bench)}
    assert config_for("TonyGrove/stage", params) == "d1+local+alert"
    assert config_for("MainStreet/stage", params) is None  # no row for it: the defaults
    assert config_for("TonyGrove/stage", {**params, "detector_config": {"default": "d2"}}) == "d2"
    assert pipeline.resolve_config(config_for("TonyGrove/stage", params))["merge_gap"] == 8
    # a +ice name (the ice rule reads the site's water temperature when the scorer supplies it)
    ice = pipeline.resolve_config("d2+local+alert+ice")
    assert (ice["ice_temp"], ice["ice_points"], ice["local_sigma_points"]) == (0.5, 8, 96)
