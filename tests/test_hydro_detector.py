"""HydroDetector: streaming == batch, small picklable state, verification and rules on labeled synthetic data."""

import pickle

import numpy as np
import pytest

from serving.core.event_metrics import all_metrics, runs
from serving.core.hydro_detector import (
    KEYS,
    R_BLOCK,
    R_EXCURSION,
    R_HANG,
    R_ICE,
    fit_detector,
    median_mad,
    rough_scale_of,
    rough_spread,
    slide,
)
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
    assert len(pickle.dumps(state)) < 12000  # baseline windows, their sorted copies, two days of jumps
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


def _flat_detector(**kw):
    """A detector on a quiet white-noise history (sd 0.1 around 10): every constant below is known."""
    rng = np.random.default_rng(11)
    hist = 10 + rng.normal(0, 0.1, 600)
    kw = {"order": (0, 0, 0), **kw}
    return fit_detector(hist, np.arange(600) * 900_000, change_threshold=2.0, **kw), rng


def test_median_mad_and_sliding_sorted_window_equal_sorting():
    # the per-point shortcut must give the very floats that sorting gives (verdicts bit-for-bit unchanged)
    rng = np.random.default_rng(5)
    for n in list(range(1, 30)) + [96, 192]:
        for xs in (rng.normal(size=n), rng.integers(-3, 4, size=n).astype(float), np.round(rng.normal(size=n), 1)):
            xs = [float(v) for v in xs]
            m = sorted(xs)[n // 2]
            assert median_mad(sorted(xs)) == (m, sorted(abs(v - m) for v in xs)[n // 2])
    assert median_mad([1.0, 2.0, 10.0]) == (2.0, 1.0)
    window, ordered = (), ()
    for v in rng.integers(0, 6, size=400).astype(float):
        window, ordered = slide(window, ordered, float(v), 17)
        assert len(window) <= 17 and ordered == tuple(sorted(window))


def test_rough_spread_exact():
    # increments 0, 1, 0, 1, ... : median 0 or 1, absolute deviations half 0 half 1 -> MAD 1 (upper median)
    assert rough_spread([0.0, 1.0] * 6, order=1) == pytest.approx(1.4826)
    # 13 increments -> 12 differences alternating +1, -1: (upper) median +1, deviations 0 and 2 -> MAD 2
    assert rough_spread([0.0, 1.0] * 6 + [0.0], order=2) == pytest.approx(2 * 1.4826)
    # a smooth rise: constant increments have no spread at all
    assert rough_spread([0.5] * 12, order=1) == 0.0 and rough_spread([0.5] * 12, order=2) == 0.0
    assert rough_spread([1.0] * 5) is None  # too few increments to tell


def test_rough_block_flags_jitter_but_not_a_smooth_rise():
    det, rng = _flat_detector()
    assert det.rough_scale == pytest.approx(rough_scale_of(det.history_tail), rel=0.5)
    ts = np.arange(200) * 900_000
    jitter = 10 + np.where(np.arange(200) % 2, 1.0, -1.0) * (np.arange(200) >= 100) + rng.normal(0, 0.1, 200)
    out = det.score_series(jitter, ts)
    assert not out["anomalous"][:100].any()
    assert (out["reasons"][120:] & R_BLOCK).all()
    rise = 10 + np.clip(np.arange(200) - 100, 0, None) * 0.3 + rng.normal(0, 0.1, 200)  # a smooth flood limb
    out = det.score_series(rise, ts)
    assert not out["anomalous"].any()  # smooth: no rough block, and nothing starts an excursion
    # without the onset requirement the same rise is an excursion as soon as it leaves the envelope
    out = det.variant(excursion_onset=False).score_series(rise, ts)
    assert (out["reasons"][150:] & R_EXCURSION).all() and not (out["reasons"] & R_BLOCK).any()


def test_shift_stays_flagged_and_return_jump_is_not_flagged():
    det, rng = _flat_detector(hold=4)
    x = 10 + rng.normal(0, 0.1, 300)
    x[100:160] += 6.0  # a shifted block: the jump is verified, the envelope keeps the whole block flagged
    out = det.score_series(x, np.arange(300) * 900_000)
    assert out["verified"][100] and out["anomalous"][100:160].all()
    assert (out["reasons"][110:160] & R_EXCURSION).all()
    assert not out["anomalous"][160:].any()  # the jump back is a return, not a new anomaly
    base = det.variant(use_rules=False).score_series(x, np.arange(300) * 900_000)
    assert base["anomalous"][100] and base["anomalous"][100:160].sum() < 30


def test_interval_uses_robust_spread_unless_asked():
    det, _ = _flat_detector()
    assert det.arima.use_robust and det.arima.sigma == pytest.approx(det.arima.robust_sigma)
    mle = det.variant(robust_sigma=False)
    assert mle.arima.sigma == pytest.approx(np.sqrt(det.arima.sigma2))
    assert det.arima.sigma == pytest.approx(0.1, rel=0.2) and mle.arima.sigma == pytest.approx(0.1, rel=0.2)


def test_local_spread_widens_interval_and_gates_jumps_in_noisy_periods():
    # the two jump rules below (recurrence, return to the anchor) also drop most noisy-regime jumps: off here
    det, rng = _flat_detector(recurrence_days=0, return_anchor=False)
    x = 10 + rng.normal(0, 0.1, 400)
    x[100:] = 10 + rng.normal(0, 1.0, 300)  # a noisier regime (high flow): jumps of 2-4 are ordinary now
    x[350] = 30.0  # a real dropout-size spike stays an anomaly
    ts = np.arange(400) * 900_000
    fixed = det.score_series(x, ts)
    local = det.variant(local_sigma_points=96).score_series(x, ts)
    width_l, width_f = local["upper"] - local["lower"], fixed["upper"] - fixed["lower"]
    # quiet: never narrower than the history interval, at most a little wider (a 96-point MAD is noisy)
    assert np.all(width_l[:100] >= width_f[:100]) and np.median(width_l[:100]) < 1.5 * width_f[0]
    assert np.all(width_l[220:340] > 3 * width_f[220:340])
    assert local["verified"][200:340].sum() < fixed["verified"][200:340].sum() / 3
    assert local["verified"][350] and fixed["verified"][350]


def test_daily_recurrent_jump_is_verified_once_then_not():
    det, rng = _flat_detector(hold=1, max_excursion=4, recurrence_days=2)
    n = 96 * 4  # four days of 15-minute points; a 3 cm step up every afternoon (back down two hours later)
    x = 10 + rng.normal(0, 0.1, n)
    for d in range(4):
        x[d * 96 + 60 : d * 96 + 68] += 3.0
    ts = np.arange(n) * 900_000
    out = det.score_series(x, ts)
    assert out["verified"][60]  # the first afternoon: nothing like it the day before
    assert not out["verified"][[156, 252, 348]].any()  # the same jump on the next days is recurrent
    off = det.variant(recurrence_days=0).score_series(x, ts)
    assert off["verified"][[60, 156, 252, 348]].all()
    y = x.copy()
    y[120] -= 3.0  # an opposite jump at another time of day is still judged
    assert det.score_series(y, ts)["verified"][120]


def test_snap_back_after_an_unflagged_drift_is_not_verified():
    rng = np.random.default_rng(11)
    hist = 10 + np.cumsum(rng.normal(0, 0.05, 600))  # a slowly wandering level: ARIMA(0, 1, 0) follows a drift
    det = fit_detector(hist, np.arange(600) * 900_000, order=(0, 1, 0), change_threshold=2.0)
    ts = np.arange(400) * 900_000
    x = hist[-1] + np.cumsum(rng.normal(0, 0.05, 400))
    x[130:300] += np.linspace(0, 5, 170)  # a slow drift over most of the baseline window, snapping back at 300
    out = det.score_series(x, ts)
    assert not out["anomalous"][130:301].any() and out["candidate"][300]
    assert det.variant(return_anchor=False).score_series(x, ts)["verified"][300]
    z = hist[-1] + np.cumsum(rng.normal(0, 0.05, 400))
    z[300] += 6.0  # a spike from the normal level is not a return
    assert det.score_series(z, ts)["verified"][300]


def test_return_from_a_dropout_ends_the_anomaly_even_where_the_river_rose_meanwhile():
    det, rng = _flat_detector(hold=4)
    assert det.undo_points > 0  # on by default
    x = 10 + rng.normal(0, 0.1, 300)
    x[100:106] = 0.0  # the reading falls to the sensor floor ...
    x[106:] += 6.0  # ... and comes back 6 cm higher: the river rose during the dropout (not an anomaly)
    ts = np.arange(300) * 900_000
    out = det.score_series(x, ts)
    assert out["anomalous"][100:106].all()
    assert not out["anomalous"][106:].any()
    # six equal readings are also a stuck run: the undo rule alone ends the anomaly too ...
    assert not det.variant(stuck_end=False).score_series(x, ts)["anomalous"][106:].any()
    # ... and without either rule the raised level stays flagged as an excursion from the frozen baseline
    assert det.variant(undo_points=0, stuck_end=False).score_series(x, ts)["anomalous"][106:150].all()


def test_lone_small_jump_is_alerted_from_its_second_point_only():
    det, rng = _flat_detector(hold=4, lone_jump=3.0)
    x = 10 + rng.normal(0, 0.1, 400)
    x[100] += 4.0  # a lone 4 cm blip (below 3 thresholds): not alerted
    x[200:203] += 4.0  # a 4 cm departure lasting three points: alerted from its second point
    x[300] += 8.0  # a lone 8 cm spike: alerted at once
    ts = np.arange(400) * 900_000
    out = det.score_series(x, ts)
    assert out["verified"][[100, 200, 300]].all()
    assert not out["anomalous"][100] and not out["anomalous"][200] and out["anomalous"][201:203].all()
    assert out["anomalous"][300]
    assert det.variant(lone_jump=0.0).score_series(x, ts)["anomalous"][[100, 200, 300]].all()


def test_alert_stays_open_over_short_gaps():
    det, rng = _flat_detector(hold=4, merge_gap=8)
    x = 10 + rng.normal(0, 0.1, 300)
    x[[100, 105]] += 8.0  # two spikes five points apart: one alert
    ts = np.arange(300) * 900_000
    out = det.score_series(x, ts)
    assert runs(out["anomalous"]).tolist() == [[100, 114]]
    assert (out["reasons"][[101, 113]] == R_HANG).all() and out["reasons"][105] != R_HANG
    assert runs(det.variant(merge_gap=0).score_series(x, ts)["anomalous"]).tolist() == [[100, 101], [105, 106]]


def test_a_steep_ramp_is_followed_not_held_while_a_step_stays_flagged():
    rng = np.random.default_rng(4)
    # two well-separated level states (10 and 20, switching every 100 points): crossing between them is rare
    hist = np.repeat([10.0, 20.0] * 3, 100) + rng.normal(0, 0.05, 600)
    det = fit_detector(hist, np.arange(600) * 900_000, order=(0, 1, 0), change_threshold=2.0, k_range=(2,))
    assert det.onset_step  # on by default
    x = 10 + rng.normal(0, 0.05, 400)
    x[60:120] += 6.0  # a 6 cm step: a shifted block
    x[250:260] += np.arange(1, 11) * 1.5  # a flood's rising limb: 1.5 cm per step (each under 2 cm) ...
    x[260:350] += 15.0 * np.exp(-np.arange(90) / 40)  # ... and its recession
    ts = np.arange(400) * 900_000
    out = det.score_series(x, ts)
    off = det.variant(onset_step=False).score_series(x, ts)
    assert out["verified"][250:260].any()  # the limb crosses into the rare upper state: verified once
    # held at its start, the limb is judged as one growing jump and starts an excursion
    assert off["anomalous"][250:350].sum() > 20
    assert out["anomalous"][250:350].sum() <= 3
    assert out["anomalous"][60:120].all() and off["anomalous"][60:120].all()


def test_end_of_a_stuck_run_ends_the_anomaly_even_where_the_river_rose_meanwhile():
    det, rng = _flat_detector(hold=4)
    assert det.stuck_end  # on by default
    x = 10 + rng.normal(0, 0.1, 300)
    x[100:150] = x[100]  # the sensor sticks for 50 points ...
    x[150:] += 6.0  # ... and comes back 6 cm higher: the river rose while it was stuck (not an anomaly)
    ts = np.arange(300) * 900_000
    out = det.score_series(x, ts)
    assert out["anomalous"][100 + det.stuck_run:150].all()
    assert not out["anomalous"][150:].any()
    # without the rule the jump off the stuck value is verified and the raised level stays an excursion
    off = det.variant(stuck_end=False).score_series(x, ts)
    assert off["verified"][150] and off["anomalous"][150:200].all()


def test_roughness_the_history_shows_daily_at_this_hour_does_not_start_a_block():
    rng = np.random.default_rng(5)
    step, per_day, days = 900_000, 96, 14
    hist = 10 + rng.normal(0, 0.02, per_day * days)
    jitter = np.tile([0.6, -0.6], 16)  # 8 hours of alternating +-0.6 cm, every day from 08:00 (a daily pulse)
    for d in range(days):
        hist[d * per_day + 32 : d * per_day + 64] += jitter
    ts_hist = np.arange(len(hist)) * step
    det = fit_detector(hist, ts_hist, order=(0, 0, 0), change_threshold=2.0, rough_daily=True)
    prof = np.asarray(det.rough_profile)
    assert len(prof) == per_day and prof[50] > 4 * det.rough_scale and prof[10] < 2 * det.rough_scale
    x = 10 + rng.normal(0, 0.02, 2 * per_day)
    x[32:64] += jitter  # the usual pulse, at its usual hour
    x[per_day + 72 : per_day + 90] += jitter[:18]  # the same jitter at 18:00, where the history is quiet
    ts = ts_hist[-1] + step + np.arange(len(x)) * step  # the scored day starts at 00:00 like the history
    out = det.score_series(x, ts)
    assert not (out["reasons"][:per_day] & R_BLOCK).any()
    assert (out["reasons"][per_day + 72 : per_day + 90] & R_BLOCK).any()
    off = det.variant(rough_daily=False).score_series(x, ts)
    assert (off["reasons"][32:64] & R_BLOCK).any()


def test_ice_rule_flags_cold_readings_only_with_the_covariate():
    det, rng = _flat_detector(hold=4, ice_temp=0.5, ice_points=8)
    x = 10 + rng.normal(0, 0.1, 300)
    x[[50, 250]] += 8.0  # two spikes the level rules find with or without the covariate
    temp = np.full(300, 3.0)
    temp[100:104] = 0.3  # a short cold dip (4 readings): under ice_points, not ice
    temp[150:200] = 0.2  # the water at its freezing point for 50 readings: ice-suspect from the 8th on
    temp[170] = np.nan  # a missing temperature reading ends the cold run
    ts = np.arange(300) * 900_000
    out = det.score_series(x, ts, covariate=temp)
    ice = (out["reasons"] & R_ICE).astype(bool)
    assert np.flatnonzero(ice).tolist() == list(range(157, 170)) + list(range(178, 200))
    assert out["anomalous"][ice].all() and out["anomalous"][[50, 250]].all()
    # the level rules run unchanged beside it: without the covariate, or without ice_temp, the verdicts are the
    # detector's own, and they equal the covariate run's outside the ice points
    plain = det.score_series(x, ts)
    np.testing.assert_array_equal(det.variant(ice_temp=None).score_series(x, ts, covariate=temp)["anomalous"],
                                  plain["anomalous"])
    np.testing.assert_array_equal(plain["anomalous"][~ice], out["anomalous"][~ice])
    assert not plain["anomalous"][150:200].any()
    # streaming with the covariate gives the batch verdicts
    state = det.new_state()
    for n in range(300):
        state, o = det.update(state, int(ts[n]), float(x[n]), float(temp[n]))
        assert o["anomalous"] == out["anomalous"][n]
    # the "threshold" form halves the change threshold while cold instead: within the top level state (a = 0),
    # a 1.5 cm step is verified only there (a 3 cm step first brings the level into that state)
    thr = det.variant(ice_rule="threshold", ice_points=1)
    y = 10 + rng.normal(0, 0.02, 300)
    y[120:] += 3.0
    y[160:] += 1.5
    y[260:] += 1.5
    o = thr.score_series(y, ts, covariate=temp)
    assert o["verified"][160] and not o["verified"][260] and not (o["reasons"] & R_ICE).any()
    assert not thr.score_series(y, ts)["verified"][160]
