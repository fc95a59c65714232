"""HydroDetector: streaming == batch, small picklable state, verification and rules on labeled synthetic data."""

import pickle

import numpy as np
import pytest

from serving.core.event_metrics import all_metrics, runs
from serving.core.hydro_detector import KEYS, fit_detector
from training.data.synthetic_hydro import generate
from training.hydro.evaluate import VARIANTS


@pytest.fixture(scope="module")
def synth():
    df = generate(3000, seed=3, n_each=2, train_fraction=0.4)
    cut = int(0.4 * len(df))
    det = fit_detector(df.value.values[:cut], df.ts.values[:cut], change_threshold=2.0)
    return df, cut, det


def test_streaming_equals_batch_and_state_is_small(synth):
    df, cut, det = synth
    x, ts = df.value.values[cut:], df.ts.values[cut:]
    batch = det.score_series(x, ts)
    state = pickle.loads(pickle.dumps(det.new_state()))
    for n in range(len(x)):
        state, out = det.update(state, int(ts[n]), float(x[n]))
        state = pickle.loads(pickle.dumps(state))  # as Flink keyed state would
        assert out["anomalous"] == batch["anomalous"][n]
        assert out["forecast"] == pytest.approx(batch["forecast"][n])
    assert set(KEYS) <= set(batch)
    assert len(pickle.dumps(state)) < 8000
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.score_series(x, ts)["anomalous"], batch["anomalous"])


def test_markov_verification_drops_candidates_and_rules_fill_blocks(synth):
    df, cut, det = synth
    x, ts, y = df.value.values[cut:], df.ts.values[cut:], df.label.values[cut:]
    valid = np.isfinite(x)
    res = {
        name: all_metrics(y, det.variant(**kw).score_series(x, ts)["anomalous"], ts, valid)
        for name, kw in {"arima": VARIANTS["arima"], "markov": VARIANTS["arima+markov"], "full": {}}.items()
    }
    assert res["markov"]["fp"] < res["arima"]["fp"] / 2  # verification removes false candidates
    assert res["markov"]["specificity"] > res["arima"]["specificity"]
    # the full detector: persistence rules cover blocks, the return rule and robust interval keep FPs rare
    assert res["full"]["sensitivity"] > res["arima"]["sensitivity"] + 0.15
    assert res["full"]["specificity"] >= 0.99
    assert res["full"]["event_recall"] >= 0.5


def test_spike_and_dropout_are_found(synth):
    df, cut, det = synth
    out = det.score_series(df.value.values, df.ts.values)
    for kind in ("spike", "dropout"):
        for s, e in runs(df.kind.values == kind):
            assert out["anomalous"][s:e].any(), (kind, s, e)


def test_missing_values_and_gaps_do_not_flag(synth):
    df, cut, det = synth
    state = det.new_state()
    t0 = int(df.ts.values[cut])
    state, _ = det.update(state, t0, float(df.value.values[cut]))
    state, out = det.update(state, t0 + 1, float("nan"))
    assert not out["anomalous"] and not out["candidate"] and np.isfinite(out["forecast"])
    # a gap longer than max_gap_ms restarts the recursion: the first value after it is not a candidate
    state, out = det.update(state, t0 + 10 * det.max_gap_ms, float(df.value.values[cut] + 30))
    assert not out["candidate"]


def test_refit_mode_runs_and_mostly_agrees(synth):
    df, cut, det = synth
    x, ts = df.value.values[cut : cut + 150], df.ts.values[cut : cut + 150]
    inc = det.score_series(x, ts)
    ref = det.variant(mode="refit").score_series(x, ts)
    assert np.mean(inc["anomalous"] == ref["anomalous"]) >= 0.9
    assert np.median(np.abs(inc["forecast"] - ref["forecast"])) < 3 * det.arima.sigma
