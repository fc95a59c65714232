"""Univariate sensor detector: sliding-window ARIMA candidates verified by a Markov chain over KMeans++ states
(Ye et al. 2020), plus label-free persistence rules that real stage data need.

Per point (``update``):
1. ARIMA one-step forecast and ``level`` prediction interval (``incremental`` or ``refit`` mode, see arima.py);
   a value outside it is a *candidate*. The interval's spread is the robust (MAD) spread of the in-sample
   residuals (``robust_sigma`` in ``fit_detector``): past dropouts and spikes in the history inflate the MLE
   variance and hide later ones. Default ``level`` 0.99 (chosen on synthetic calibration seeds 2-5).
2. Markov verification of the candidate (markov.verify, the paper's rule): transition from the reference
   state (the last accepted value) to the value's state; kept when improbable relative to the most probable
   transition from that state, or when the change exceeds ``change_threshold``.
3. Persistence rules, all label-free (their constants are fixed defaults or derived from history); the
   ``reasons`` output says which fired (bits R_*):
   - *rough block* (``block_rule="rough"``): the robust spread of the last ``rough_window`` increments'
     differences (``rough_order`` 2; 1: of the increments) is at least ``rough_on`` times its typical value
     (the larger of the history's median and, with ``rough_local``, the recent unflagged points' median);
     flagging continues until it falls to ``rough_off`` times (ice, sensor handling and fouling make long
     jittery blocks in which single points look ordinary; smooth floods and the daily cycle do not trip it).
     With ``rough_daily`` the typical value is also at least the history's median spread at this time of
     day (``rough_profile``, over the history's days): a roughness seen at that hour on most days (daily
     releases or pulses) starts no block;
     ``block_rule="density"`` is session 1's rule (share of ARIMA candidates among the last 24 points);
   - *stuck sensor*: a run of ``stuck_run`` or more identical values (|change| <= ``stuck_eps``) is flagged
     from its ``stuck_run``-th point on; ``stuck_run`` is twice the 99.5th percentile of flat-run lengths in
     the history (at least 6), so a sensor that normally repeats values does not trip it;
   - *excursion* (envelope persistence): a value further than ``excursion_sigmas`` robust sigmas (MAD) and
     more than ``change_threshold`` from the median of the last ``baseline_points`` unflagged values stays
     flagged once another rule started the block (``excursion_onset``: leaving the envelope smoothly, as a
     flood's rising limb does, starts nothing); the baseline freezes while flagged, so a shifted or stuck
     block stays flagged until the value returns. A new level is accepted after ``max_excursion`` flagged
     points once the rough-block rule is off (a real step change is flagged for a day at most);
   - *return*: a value back inside the envelope after flagged points (or from outside it) is not verified:
     the jump that ends an anomaly is not a new one;
   - *step onset* (``onset_step``, on): only a verified point whose raw jump is at least the change threshold
     starts an excursion or a hold; a departure that begins as a steep ramp (a flood's rising limb, each
     step under the threshold, verified once where it crosses into a rare state) is followed, not held at
     its start (held, the limb is judged as one growing jump against the level before it, step after step);
   - *undo* (``undo_points``): a jump opposite to a verified jump (|jump| >= ``change_threshold``) of the last
     ``undo_points`` points and 0.5-2 times its size ends that anomaly: it is not verified, and an excursion
     the anomaly froze must start again (the river may have risen during a dropout, so the reading comes
     back outside the frozen baseline);
   - *stuck end* (``stuck_end``, on): the point that ends a stuck run (the sensor moves again) is not verified,
     and an excursion from the baseline the stuck run froze needs a new onset (the river may have risen
     while the value was stuck: the live reading is not a new anomaly);
   - *alerting* (optional): ``lone_jump`` holds back the first point of a verified departure whose jump is
     under ``lone_jump`` change thresholds (alerted from its second point, or never if it was a lone blip);
     ``merge_gap`` keeps an alert open that many points after its last flagged point (reason ``R_HANG``),
     so flags separated by short gaps make one alert per incident;
   - *ice* (optional covariate, ``ice_temp``): given the same site's water temperature, a reading taken while
     the water has been at or below ``ice_temp`` for ``ice_points`` readings in a row is flagged (reason
     ``R_ICE``; ice makes stage readings unreliable however the level moves), on top of the other rules, whose
     state it does not touch; ``ice_rule="threshold"`` instead scales the change threshold by ``ice_factor``
     there. Without a covariate (or with ``ice_temp`` None) the detector is exactly the one without the rule;
   - *hold*: a flagged value is replaced by its forecast in the model state for up to ``hold`` consecutive
     points, so a multi-point spike is still judged against the level before it; after that the new level is
     accepted (a real step change stops being flagged).
A gap longer than ``max_gap_ms`` restarts the recursion at the first value after it.

The streaming state is a plain dict of floats and short tuples (pickled into Flink keyed state). The rolling
windows whose median or MAD a rule needs (baseline, residuals, roughness) keep a sorted copy beside them,
updated by one insertion and one deletion per point, so a point costs O(log n) comparisons in Python instead
of sorting each window (the medians and MADs, hence the verdicts, are bit-for-bit those of sorting).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from dataclasses import dataclass, field, replace

import numpy as np

from serving.core import arima as ar
from serving.core import markov as mk

KEYS = ("forecast", "lower", "upper", "candidate", "verified", "anomaly_probability", "anomalous", "reasons")
# bits of the ``reasons`` output: which rule(s) flagged the point
R_VERIFIED, R_BLOCK, R_STUCK, R_EXCURSION, R_DRIFT, R_HANG, R_ICE = 1, 2, 4, 8, 16, 32, 64
ICE_RULES = ("flag", "threshold")


@dataclass
class HydroDetector:
    arima: ar.ArimaParams
    centroids: np.ndarray
    counts: np.ndarray
    history_tail: np.ndarray
    change_threshold: float
    window: int = 30
    level: float = 0.99  # chosen on synthetic calibration seeds 2-3 (the paper's 0.95 is the ARIMA-alone row)
    mode: str = "incremental"
    min_probability: float = 0.5
    hold: int = 16
    density_window: int = 24
    density_on: float = 0.4
    density_off: float = 0.2
    block_rule: str = "rough"  # "rough" (roughness of the increments) or "density" (session-1 candidate share)
    rough_window: int = 24
    rough_on: float = 4.0
    rough_off: float = 2.0
    rough_local: bool = True  # scale by the recent unflagged spread when it is larger than the history's
    rough_order: int = 2  # 1: spread of the increments, 2: of their differences (see rough_ratio)
    rough_scale: float | None = None  # median rolling robust spread of the history's increments
    rough_daily: bool = False  # scale also by the history's typical spread at this time of day (rough_profile)
    rough_profile: tuple | None = None  # per time-of-day slot (step_ms wide): median rolling spread over days
    excursion_onset: bool = True  # an excursion only continues a block that another rule started
    state_scale: tuple | None = None  # set for (level, first difference) states: (level sd, difference sd)
    stuck_run: int | None = 12
    stuck_eps: float = 0.0
    baseline_points: int = 192
    excursion_sigmas: float = 6.0
    max_excursion: int = 96
    local_sigma_points: int = 0  # residuals of the last unflagged points that can widen the interval (0: off)
    max_gap_ms: int | None = None
    step_ms: int | None = None  # median sampling step of the history (set by fit_detector when ts is given)
    recurrence_days: int = 0  # n > 0: a jump like one 1..n days earlier at the same time of day is not verified
    return_anchor: bool = True  # a jump back to the older baseline level, from away from it, is not verified
    undo_points: int = 192  # n > 0: a jump undoing a verified jump of the last n points ends that anomaly
    onset_step: bool = True  # only a verified step (raw jump >= the change threshold) starts an excursion or a hold
    stuck_end: bool = True  # the point that ends a stuck run is not verified and needs a new onset for an excursion
    lone_jump: float = 0.0  # f > 0: a lone verified point is emitted only if its jump is >= f * threshold
    merge_gap: int = 0  # n > 0: an alert stays open n points after its last flagged point (one alert per incident)
    # optional covariate (water temperature of the same site, deg C): at or below ``ice_temp`` the water is at its
    # freezing point and stage readings may be ice-affected. ``ice_rule`` "flag": such a point is flagged (reason
    # R_ICE) on top of the other rules, which run unchanged; "threshold": the change threshold is ``ice_factor``
    # times smaller there. None (default), or no covariate given: the detector is exactly the one without it
    ice_temp: float | None = None
    ice_rule: str = "flag"
    ice_factor: float = 0.5
    ice_points: int = 1  # the "flag" rule starts once the covariate has been cold for this many points in a row
    use_markov: bool = True
    use_rules: bool = True
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.centroids = np.asarray(self.centroids, dtype=float)
        self.counts = np.asarray(self.counts, dtype=np.int64)
        self.history_tail = np.asarray(self.history_tail, dtype=float)
        self._prepare()

    def _prepare(self):
        self._inc = ar.IncrementalArima(self.arima, self.level)
        if self.state_scale is None:
            self._mid = tuple(float(v) for v in (self.centroids[:-1] + self.centroids[1:]) / 2)
        else:
            sx, sd = self.state_scale
            self._mid = tuple((float(u) / sx, float(v) / sd) for u, v in self.centroids)
        p = mk.transition_matrix(self.counts)
        self._p = tuple(tuple(float(v) for v in row) for row in p)
        self._pmax = tuple(max(row) for row in self._p)

    def __getstate__(self):
        d = dict(self.__dict__)
        for k in ("_inc", "_mid", "_p", "_pmax"):
            d.pop(k, None)
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._prepare()

    def variant(self, robust_sigma: bool | None = None, **changes) -> HydroDetector:
        """A copy with some settings changed (e.g. ``mode='refit'``, ``use_markov=False``; ``robust_sigma``
        switches the interval between the robust and the MLE innovation spread)."""
        if robust_sigma is not None:
            changes["arima"] = replace(self.arima, use_robust=bool(robust_sigma and self.arima.robust_sigma))
        return replace(self, **changes)

    @property
    def transition_matrix(self) -> np.ndarray:
        return mk.transition_matrix(self.counts)

    # ---- streaming ----
    def new_state(self) -> dict:
        tail = self.history_tail
        return {
            "arima": self._inc.initial_state(tail),
            "window": tuple(float(v) for v in tail[-self.window :]) if self.mode == "refit" else (),
            "ref": float(tail[-1]),
            "ref_dx": float(tail[-1] - tail[-2]) if len(tail) > 1 else 0.0,
            "last_raw": float(tail[-1]),
            "last_ts": None,
            "streak": 0,
            "cand_bits": 0,
            "in_block": False,
            "flat_run": 0,
            "base": tuple(float(v) for v in tail[-self.baseline_points :]),
            "base_sorted": tuple(sorted(float(v) for v in tail[-self.baseline_points :])),
            "recent": tuple(float(v) for v in tail[-8:]),
            "exc_len": 0,
            "dx": tuple(float(v) for v in np.diff(tail)[-self.rough_window :]),
            "rbase": (),
            "rbase_sorted": (),
            "res": (),
            "res_sorted": (),
            "last_env": -1,
            "jumps": (),
            "vjump": None,
            "hang": 0,
        }

    def _forecast(self, state) -> tuple[float, float, float]:
        if self.mode == "refit" and len(state["window"]) >= max(self.window // 2, sum(self.arima.order) + 3):
            try:
                return ar.refit_forecast(np.asarray(state["window"]), self.arima.order, self.level)
            except (ValueError, np.linalg.LinAlgError):
                pass
        f = self._inc.forecast(state["arima"])
        lo, hi = self._inc.interval(f)
        return f, lo, hi

    def update(self, state: dict, ts_ms: int, value: float, covariate: float | None = None) -> tuple[dict, dict]:
        """Score one point; ``covariate`` is the optional second variable of the ice rule (``ice_temp``)."""
        s = dict(state)
        if (s["last_ts"] is not None and self.max_gap_ms and ts_ms - s["last_ts"] > self.max_gap_ms
                and value is not None and math.isfinite(value)):
            # after a long gap the first value starts a new recursion; it is not judged
            s = self._restart(s, value)
            s["last_ts"] = ts_ms
            lo, hi = self._inc.interval(value)
            return s, {"forecast": value, "lower": lo, "upper": hi, "candidate": False, "verified": False,
                       "anomaly_probability": math.nan, "anomalous": False, "reasons": 0}
        f, lo, hi = self._forecast(s)
        res = s.get("res", ())
        thr, gate = self.change_threshold, 0.0
        cold = (self.ice_temp is not None and covariate is not None and math.isfinite(covariate)
                and covariate <= self.ice_temp)
        if self.ice_temp is not None:
            s["cold_run"] = s.get("cold_run", 0) + 1 if cold else 0
        if cold and self.ice_rule == "threshold":
            thr *= self.ice_factor  # near freezing, smaller level changes count (ice forming or breaking up)
        if self.local_sigma_points and len(res) >= 16:
            # the interval, and the size a jump needs to be kept whatever its transition, grow with the recent
            # residual spread (high flows are noisier than the history, by several cm on Logan River stage)
            local = 1.4826 * median_mad(_sorted_of(s, "res"))[1]
            if self._inc.z * local > (hi - lo) / 2:
                lo, hi = f - self._inc.z * local, f + self._inc.z * local
            gate = self.excursion_sigmas * local
            thr = max(thr, gate)
        out = {"forecast": f, "lower": lo, "upper": hi, "candidate": False, "verified": False,
               "anomaly_probability": math.nan, "anomalous": False, "reasons": 0}
        if value is None or not math.isfinite(value):
            # a dropout: advance the model on its own forecast, keep the reference and the rule counters
            s["arima"] = self._inc.step(s["arima"], f, f if self.mode == "incremental" else None)
            if self.mode == "refit":
                s["window"] = (s["window"] + (f,))[-self.window :]
            return s, out
        s["last_ts"] = ts_ms
        cand = bool(value < lo or value > hi)
        if self.state_scale is None:
            i, j = mk.assign_one(self._mid, s["ref"]), mk.assign_one(self._mid, value)
        else:
            i = mk.assign_one_2d(self._mid, self.state_scale, s["ref"], s.get("ref_dx", 0.0))
            j = mk.assign_one_2d(self._mid, self.state_scale, value, value - s["ref"])
        p_ij = self._p[i][j]
        a = 1.0 - p_ij / self._pmax[i] if self._pmax[i] > 0 else 1.0
        verified = mk.verify(cand, p_ij, a, value - s["ref"], thr, self.min_probability) \
            if self.use_markov else cand
        if verified and abs(value - s["ref"]) <= gate:
            verified = False  # within the recent noise: an improbable state change of a few cm is jitter
        flagged = verified
        reasons = R_VERIFIED * bool(verified)
        if self.use_rules:
            bits = ((s["cand_bits"] << 1) | int(cand)) & ((1 << self.density_window) - 1)
            dxs = (s["dx"] + (value - s["last_raw"],))[-self.rough_window :]
            if self.block_rule == "rough":
                spread = rough_spread(dxs, self.rough_order)
                scale = self.rough_scale or 0.0
                if self.rough_daily and self.rough_profile and self.step_ms:
                    # a roughness the history shows at this time of day on most days is normal there (daily
                    # releases, pumps or snowmelt pulses at FranklinBasin), however rare over the whole day
                    prof = self.rough_profile
                    scale = max(scale, prof[(ts_ms % 86_400_000) // self.step_ms % len(prof)])
                if self.rough_local and len(s["rbase"]) >= 8:
                    # the typical spread of the last unflagged points, when larger: high flows are rougher
                    rs = _sorted_of(s, "rbase")
                    scale = max(scale, rs[len(rs) // 2])
                r = spread / scale if spread is not None and scale > 0 else 0.0
                in_block = r >= self.rough_on or (s["in_block"] and r > self.rough_off)
            else:
                spread = None
                share = bits.bit_count() / self.density_window
                in_block = share >= self.density_on or (s["in_block"] and share > self.density_off)
            flat = s["flat_run"] + 1 if abs(value - s["last_raw"]) <= self.stuck_eps else 0
            stuck = self.stuck_run is not None and flat + 1 >= self.stuck_run
            env = self._envelope(s, value)
            excursion = env == 1
            if env == 0 and (s["streak"] > 0 or s.get("last_env") == 1):
                # back inside the envelope from outside it (or after flagged points): the jump that ends an
                # anomaly (also one that went unflagged, e.g. a slow drift) is not a new one
                verified = False
            if verified and self.return_anchor and self._returns_to_anchor(s, value):
                verified = False
            vjump, undone = s.get("vjump"), False
            if self.undo_points and vjump is not None:
                vd, age = vjump
                dx = value - s["last_raw"]
                # the opposite of a recent verified jump, of a similar size: the end of that anomaly (a shift
                # snapping back, a dropout's reading coming back even where the level moved meanwhile)
                undone = age < self.undo_points and dx * vd < 0 and 0.5 <= abs(dx / vd) <= 2.0
                verified = verified and not undone
            jumps = s.get("jumps", ())
            if self.recurrence_days and self.step_ms:
                jumps, recurrent = self._recurrence(jumps, ts_ms, value - s["last_raw"])
                verified = verified and not recurrent
            if self.excursion_onset and s["exc_len"] == 0:
                # leaving the envelope smoothly (a flood's rising limb) is not an anomaly by itself
                step = verified and (not self.onset_step or abs(value - s["last_raw"]) >= thr)
                excursion = excursion and bool(step or in_block or stuck)
            unstuck = self.stuck_end and self.stuck_run is not None and not stuck \
                and s["flat_run"] + 1 >= self.stuck_run
            if unstuck:
                # the sensor moves again: the jump from the stuck value to the live reading ends that anomaly and
                # is not a new one (the river may have risen while the value was stuck)
                verified = False
            if undone or unstuck:
                # the anomaly that froze the baseline ended; a level still outside it (the river rose during a
                # dropout or a stuck run) needs a new onset
                excursion = excursion and bool(in_block or stuck)
            if self.undo_points:
                dx = value - s["last_raw"]
                jumped = verified and abs(dx) >= self.change_threshold  # a step, not the next point of one
                vjump = None if undone else (dx, 0) if jumped else \
                    None if vjump is None else (vjump[0], vjump[1] + 1)
            exc_len = s["exc_len"] + 1 if excursion else 0
            recent = (s["recent"] + (value,))[-8:]
            base, base_sorted = s["base"], _sorted_of(s, "base")
            if excursion and exc_len > self.max_excursion and not in_block:
                base, base_sorted, excursion, exc_len = recent, tuple(sorted(recent)), False, 0  # accept new level
            flagged = verified or in_block or stuck or excursion
            reasons = (R_VERIFIED * verified) | (R_BLOCK * in_block) | (R_STUCK * stuck) | (R_EXCURSION * excursion)
            rbase, rbase_sorted = s["rbase"], _sorted_of(s, "rbase")
            if not flagged:
                base, base_sorted = slide(base, base_sorted, value, self.baseline_points)
                if self.block_rule == "rough" and spread is not None:
                    rbase, rbase_sorted = slide(rbase, rbase_sorted, spread, self.baseline_points)
            s.update(cand_bits=bits, in_block=in_block, flat_run=flat, exc_len=exc_len, recent=recent, base=base,
                     base_sorted=base_sorted, dx=dxs, rbase=rbase, rbase_sorted=rbase_sorted, last_env=env,
                     jumps=jumps, vjump=vjump)
        raw_jump = value - s["last_raw"]
        s["last_raw"] = value
        if self.local_sigma_points:
            # every point counts (the median tolerates spikes); keeping only unflagged ones would freeze the
            # spread at its quiet value as soon as a noisy regime gets flagged, and never let it widen
            s["res"], s["res_sorted"] = slide(res, _sorted_of(s, "res"), value - f, self.local_sigma_points)
        s["streak"] = s["streak"] + 1 if flagged else 0
        emitted = flagged
        ice = cold and self.ice_rule == "flag" and s["cold_run"] >= self.ice_points
        if (flagged and not ice and self.lone_jump and s["streak"] == 1 and not reasons & ~(R_VERIFIED | R_EXCURSION)
                and abs(value - s["ref"]) < self.lone_jump * thr):
            # the first point of a verified departure (and of the excursion it starts) is held back unless the
            # jump is large: the next point confirms it (judged against the same held reference and frozen
            # baseline) or ends it as a lone blip
            emitted, reasons = False, 0
        if ice:
            # ice-affected readings are suspect whatever the level does; the rules' state is left as without it
            emitted, reasons = True, reasons | R_ICE
        if self.merge_gap:
            hang = s.get("hang", 0)
            if emitted:
                s["hang"] = self.merge_gap
            elif hang > 0:
                emitted, reasons, s["hang"] = True, R_HANG, hang - 1
        ramp_rule = self.use_rules and self.onset_step
        if ramp_rule and s["streak"] == 1:
            # a departure that began as a ramp (a flood's rising limb) is followed, not held at its start
            s["stepped"] = abs(raw_jump) >= thr
        held = flagged and s["streak"] <= self.hold and (not ramp_rule or s.get("stepped", True))
        use = f if held else value
        s["arima"] = self._inc.step(s["arima"], use, f if self.mode == "incremental" else None)
        if self.mode == "refit":
            s["window"] = (s["window"] + (use,))[-self.window :]
        s["ref_dx"] = use - s["ref"]
        s["ref"] = use
        out.update(candidate=cand, verified=bool(verified), anomaly_probability=a if cand else math.nan,
                   anomalous=bool(emitted), reasons=int(reasons))
        return s, out

    def _envelope(self, s: dict, value: float) -> int:
        """1 when ``value`` is outside the baseline envelope (more than ``change_threshold`` and
        ``excursion_sigmas`` robust sigmas from the median of the recent unflagged values), 0 inside,
        -1 while the baseline is too short to tell."""
        if len(s["base"]) < max(8, self.baseline_points // 4):
            return -1
        ordered = _sorted_of(s, "base")
        med = ordered[len(ordered) // 2]
        dev = abs(value - med)
        if dev <= self.change_threshold:
            return 0
        mad = median_mad(ordered)[1] * 1.4826
        return int(dev > self.excursion_sigmas * mad)

    def _returns_to_anchor(self, s: dict, value: float) -> bool:
        """True when ``value`` lands within ``change_threshold`` of the *older* half of the baseline's median
        while the value before it was further away: the snap-back that ends a slow drift or a shift that went
        unflagged (the recent half of the baseline already holds the drifted values, so the envelope test
        cannot see it as a return)."""
        base = s["base"]
        if len(base) < max(16, self.baseline_points // 2):
            return False
        older = sorted(base[: len(base) // 2])
        anchor = older[len(older) // 2]
        return abs(value - anchor) <= self.change_threshold < abs(s["last_raw"] - anchor)

    def _recurrence(self, jumps: tuple, ts_ms: int, dx: float) -> tuple[tuple, bool]:
        """Keep the jumps (|increment| >= ``change_threshold`` / 2) of the last ``recurrence_days`` days as
        (ts, increment) pairs; a jump is *recurrent* when one of the same sign and at least half its size
        happened 1..``recurrence_days`` days earlier within two sampling steps of the same time of day
        (daily snowmelt pulses, diversions or pumps: FranklinBasin stage jumps 2-3 cm every afternoon)."""
        day, tol = 86_400_000, 2 * self.step_ms
        keep = tuple(j for j in jumps if ts_ms - j[0] <= self.recurrence_days * day + tol)
        if abs(dx) < self.change_threshold / 2:
            return keep, False
        recurrent = any(
            jd * dx > 0 and abs(jd) >= abs(dx) / 2 and abs((ts_ms - jt) - day * round((ts_ms - jt) / day)) <= tol
            and 1 <= round((ts_ms - jt) / day) <= self.recurrence_days
            for jt, jd in keep)
        return keep + ((ts_ms, dx),), recurrent

    def _restart(self, s: dict, value: float) -> dict:
        need = self._inc.n_levels + 1
        s = dict(s, arima=(tuple([float(value)] * need)[-max(self._inc.n_levels, 1):], (0.0,) * self._inc.q),
                 ref=float(value), ref_dx=0.0, last_raw=float(value), streak=0, cand_bits=0, in_block=False, flat_run=0,
                 recent=(float(value),), exc_len=0, dx=())
        if self.mode == "refit":
            s["window"] = (float(value),)
        return s

    # ---- batch ----
    def score_series(self, values, ts=None, state: dict | None = None, return_state: bool = False,
                     covariate=None):
        """Score a whole series point by point (same verdicts as streaming); dict of numpy arrays.
        ``covariate``: the ice rule's second variable aligned with ``values`` (NaN where missing), or None."""
        x = np.asarray(values, dtype=float)
        c = None if covariate is None else np.asarray(covariate, dtype=float)
        t = np.arange(len(x), dtype=np.int64) if ts is None else np.asarray(ts, dtype=np.int64)
        st = self.new_state() if state is None else state
        cols = {k: np.empty(len(x), dtype=bool if k in ("candidate", "verified", "anomalous") else
                            np.int64 if k == "reasons" else float) for k in KEYS}
        for n in range(len(x)):
            st, out = self.update(st, int(t[n]), float(x[n]), None if c is None else float(c[n]))
            for k in KEYS:
                cols[k][n] = out[k]
        return (cols, st) if return_state else cols


def _sorted_of(s: dict, key: str) -> tuple:
    """The sorted copy of window ``key`` (rebuilt once for a state pickled before the copies existed)."""
    ordered = s.get(key + "_sorted")
    if ordered is None or len(ordered) != len(s[key]):
        ordered = s[key + "_sorted"] = tuple(sorted(s[key]))
    return ordered


def slide(window: tuple, ordered: tuple, value: float, size: int) -> tuple[tuple, tuple]:
    """Append ``value`` to ``window`` (keeping its last ``size`` values) and keep ``ordered``, its sorted copy,
    in step: one insertion and one deletion by bisection, no sort."""
    out = list(ordered)
    insort(out, value)
    window = window + (value,)
    while len(window) > size:
        del out[bisect_left(out, window[0])]
        window = window[1:]
    return window, tuple(out)


def median_mad(ordered) -> tuple[float, float]:
    """Median ``m = ordered[n // 2]`` of a sorted sequence and the raw MAD, ``sorted(|v - m|)[n // 2]``,
    without sorting: the distances below the median (``m - ordered[i]``, read leftwards) and above it
    (``ordered[i] - m``, read rightwards) are two ascending sequences, and the MAD is their merged
    ``n // 2``-th element, found by bisection on how many come from the left one. The same floats as
    sorting ``abs(v - m)`` (IEEE subtraction is sign-symmetric)."""
    n = len(ordered)
    h = n // 2
    m = ordered[h]
    k = h + 1  # how many of the smallest distances to take; the MAD is the largest of them
    nl, nr = h, n - h  # left: m - ordered[h - 1 - t]; right: ordered[h + t] - m (t = 0, 1, ...)
    lo, hi = max(0, k - nr), min(k, nl)
    while True:
        i = (lo + hi) // 2  # take i from the left and k - i from the right
        j = k - i
        if i < nl and j > 0 and ordered[h + j - 1] - m > m - ordered[h - 1 - i]:
            lo = i + 1  # the right's j-th is larger than the left's (i+1)-th: take more from the left
        elif i > 0 and j < nr and m - ordered[h - i] > ordered[h + j] - m:
            hi = i - 1  # the left's i-th is larger than the right's (j+1)-th: take fewer from the left
        else:
            left = m - ordered[h - i] if i > 0 else -math.inf
            right = ordered[h + j - 1] - m if j > 0 else -math.inf
            return m, max(left, right)


def rough_ratio(dxs, scale: float | None, order: int = 2) -> float:
    spread = rough_spread(dxs, order)
    return spread / scale if scale and spread is not None else 0.0


def rough_spread(dxs, order: int = 2) -> float | None:
    """Robust spread (1.4826 MAD) of the recent increments (``order`` 1) or of their differences (``order`` 2,
    the default) over the history's typical spread: noise-like jitter (ice, a sensor being handled or fouled)
    raises it; smooth rises and recessions (a flood's limbs, the daily snowmelt cycle) do not, as their
    increments change slowly."""
    if order == 2:
        dxs = [b - a for a, b in zip(dxs[:-1], dxs[1:])]
    if len(dxs) < 8:
        return None
    return 1.4826 * median_mad(sorted(dxs))[1]


def _window_spreads(w: np.ndarray) -> np.ndarray:
    """Robust spread (1.4826 MAD) of each row of ``w`` (rolling windows of increments)."""
    med = np.median(w, axis=1, keepdims=True)
    return 1.4826 * np.median(np.abs(w - med), axis=1)


def rough_scale_of(values: np.ndarray, window: int = 24, order: int = 2) -> float | None:
    """Median over the history of the rolling robust spread that ``rough_ratio`` computes (robust to
    anomalous stretches covering less than half the history); None when undefined."""
    x = np.asarray(values, dtype=float)
    dx = np.diff(x)
    dx = dx[np.isfinite(dx)]
    if order == 2:
        window -= 1
        dx = np.diff(dx)
    if len(dx) < 2 * window:
        return None
    mad = _window_spreads(np.lib.stride_tricks.sliding_window_view(dx, window)[:: max(1, len(dx) // 5000)])
    scale = float(np.median(mad))
    if scale <= 0:  # quantised sensors: fall back to the mean spread
        scale = float(np.mean(mad))
    return scale if scale > 0 else None


def rough_profile_of(values: np.ndarray, ts: np.ndarray, step_ms: int | None, window: int = 24,
                     order: int = 2, min_days: int = 7) -> tuple | None:
    """Per time-of-day slot (``step_ms`` wide), the median over the history's days of the rolling robust
    spread that ``rough_spread`` computes for a window ending in that slot; None without ``step_ms`` or with
    fewer than ``min_days`` days of history."""
    x = np.asarray(values, dtype=float)
    t = np.asarray(ts, dtype=np.int64)
    day = 86_400_000
    if not step_ms or len(x) < 2 * window or (t[-1] - t[0]) < min_days * day or day % step_ms:
        return None
    dx = np.diff(x)
    if order == 2:
        window -= 1
        dx = np.diff(dx)
    w = np.lib.stride_tricks.sliding_window_view(dx, window)
    ok = np.isfinite(w).all(axis=1)
    mad = _window_spreads(w[ok])
    end_ts = t[len(t) - len(w):][ok]  # the window's last value's timestamp
    slot = (end_ts % day) // step_ms
    n = day // step_ms
    prof = [float(np.median(mad[slot == i])) if np.sum(slot == i) >= min_days else 0.0 for i in range(n)]
    return tuple(prof)


def stuck_run_length(values: np.ndarray, eps: float = 0.0, floor: int = 6) -> int:
    """Twice the 99.5th percentile of flat-run lengths in history (at least ``floor``; ``floor`` when the
    history has fewer than 20 flat runs)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    flat = np.abs(np.diff(x)) <= eps
    lengths = [e - s + 1 for s, e in _run_bounds(flat)]
    if len(lengths) < 20:  # too few natural flat runs to estimate from (and those may be stuck periods)
        return floor
    return int(max(floor, math.ceil(2 * np.percentile(lengths, 99.5))))


def _run_bounds(mask: np.ndarray):
    m = np.asarray(mask, dtype=np.int8)
    d = np.diff(np.concatenate(([0], m, [0])))
    return zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))


def default_change_threshold(values: np.ndarray) -> float:
    """Without a unit-specific threshold (2 cm for stage in cm): 6 robust sigmas of the first differences."""
    dx = np.diff(np.asarray(values, dtype=float))
    dx = dx[np.isfinite(dx)]
    mad = float(np.median(np.abs(dx - np.median(dx)))) * 1.4826 if len(dx) else 0.0
    return 6 * mad if mad > 0 else float(np.std(dx) or 1.0)


def fit_detector(
    values: np.ndarray,
    ts: np.ndarray | None = None,
    *,
    order: tuple[int, int, int] | None = None,
    arima_params: ar.ArimaParams | None = None,
    window: int = 30,
    change_threshold: float | None = None,
    k_range: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8),
    max_order_points: int = 1000,
    seed: int = 0,
    diff_states: bool = False,
    robust_sigma: bool = True,
    **settings,
) -> HydroDetector:
    """Fit everything from history only: ARIMA (order by AIC + ADF unless given; parameters refitted on the
    tail unless ``arima_params`` is given), KMeans++ states and transition counts, rule constants."""
    x = np.asarray(values, dtype=float)
    if np.isfinite(x).sum() < 50:
        raise ValueError(f"history has {np.isfinite(x).sum()} finite values; need at least 50")
    if arima_params is None and order:
        try:
            arima_params = ar.fit_arima(x[-max_order_points:], order)
        except (ValueError, np.linalg.LinAlgError):
            arima_params = None  # the kept order no longer fits this history (MLE failed): select afresh
    if arima_params is None:
        arima_params = ar.select_order(x, max_points=max_order_points)
    # past anomalies in the history (dropouts, spikes) inflate the MLE innovation variance: the interval uses
    # the robust (MAD) spread of the in-sample residuals instead
    arima_params = replace(arima_params, use_robust=bool(robust_sigma and arima_params.robust_sigma))
    states = mk.fit_states(x, k_range=k_range, seed=seed, use_diff=diff_states)
    if diff_states:
        f = mk.features(x)
        seq = mk.assign_2d(states.centroids, states.scale, f[:, 0], f[:, 1])
    else:
        seq = mk.assign(states.centroids, x)
    counts = mk.transition_counts(seq, states.k)
    max_gap = step_ms = None
    if ts is not None and len(ts) > 2:
        step = float(np.median(np.diff(np.asarray(ts, dtype=np.int64))))
        max_gap = int(6 * step) if step > 0 else None
        step_ms = int(step) if step > 0 else None
    finite = x[np.isfinite(x)]
    det = HydroDetector(
        arima=arima_params,
        centroids=states.centroids,
        state_scale=states.scale,
        counts=counts,
        history_tail=finite[-(window + 240):],
        change_threshold=float(change_threshold if change_threshold is not None else default_change_threshold(x)),
        window=window,
        stuck_run=stuck_run_length(x),
        rough_scale=rough_scale_of(x, settings.get("rough_window", 24), settings.get("rough_order", 2)),
        rough_profile=rough_profile_of(x, ts, step_ms, settings.get("rough_window", 24),
                                       settings.get("rough_order", 2)) if ts is not None else None,
        max_gap_ms=max_gap,
        step_ms=step_ms,
        meta={"inertia": states.inertia, "silhouette": states.silhouette, "k_scores": states.k_scores,
              "n_history": int(len(finite))},
        **settings,
    )
    return det
