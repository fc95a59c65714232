"""Everything needed to score raw (unscaled) windows of one machine with a trained LSTM-ED.

Pipeline per window: robust scaling -> reconstruction (``mode``) -> e_t = |x_t - x'_t| -> per-point a_t
-> (optional) relative to recent windows -> count of a_t > tau -> anomalous when count > delta,
plus the top-3 channels by error share. With ``stream_memory`` (channel_z; session 4) tau is per window:
the (1 - ``stream_far``) quantile of the largest a_t of the windows seen before it (validation windows,
then the stream's own), carried in the stream's history; ``tau`` stays the validation (POT) threshold. Two per-point scores (``score``):

* ``mahalanobis`` (the paper; sessions 1-2): a_t = (e_t - mu)^T P (e_t - mu), optional global adaptation.
* ``channel_z`` (session 3): per channel, (e - median) / robust scale of validation errors and, with
  ``input_deviation``, the input's |robust z| (a label-free ensemble with input-space deviation); each
  feature minus its recent level (``level_windows``, warm-started from validation); a_t = mean of the
  ``top_k_channels`` largest features (optionally log1p-compressed).

Picklable (weights are kept as numpy arrays), see to_bytes().
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field

import numpy as np

from serving.core import scoring
from serving.core.windows import window_starts


@dataclass
class LSTMEDDetector:
    center: np.ndarray
    scale: np.ndarray
    clip: float
    model_config: dict
    state_dict: dict  # name -> numpy array
    mu: np.ndarray
    precision: np.ndarray
    error_sd: np.ndarray  # per-channel sd of validation errors (shrunk), for channel shares
    tau: float
    delta: float
    length: int = 100
    step: int = 90
    mode: str = "teacher"
    channel_names: list[str] = field(default_factory=list)
    adapt_windows: int = 0  # 0: plain scores; k > 0: scores relative to the previous k windows
    adapt_ref: float = 1.0  # median a_t on validation windows
    adapt_guard: float = 0.0  # 0: adapt to all recent windows; > 0: to unflagged ones, see scoring.adapt_guarded
    calibration: dict = field(default_factory=dict)  # how tau/delta were chosen (mode, quantile, ...)
    score: str = "mahalanobis"  # per-point a_t: 'mahalanobis' or 'channel_z' (see the module docstring)
    err_center: np.ndarray | None = None  # channel_z: per-channel median of validation errors
    err_scale: np.ndarray | None = None  # channel_z: per-channel robust scale of validation errors
    input_deviation: bool = False  # channel_z: add |robust z| of the inputs as features
    error_weight: float = 1.0  # channel_z: weight of the reconstruction-error features beside the inputs
    level_windows: int = 0  # channel_z: features relative to the previous k windows' levels (0: off)
    level_init: list | None = None  # channel_z: levels of the last validation windows (stream warm start)
    top_k_channels: int = 3  # channel_z: a_t = mean of the k largest features
    score_transform: str = "none"  # channel_z: 'none' or 'log1p'
    stream_memory: int = 0  # channel_z: > 0: per-window tau from the last k windows seen (scoring.stream_threshold)
    stream_far: float = 0.1  # channel_z stream threshold: tau_i = the (1 - far) quantile of those windows' maxima
    stream_init: list | None = None  # channel_z stream threshold: validation windows' maxima (the seed)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_model", None)
        return state

    @property
    def n_channels(self) -> int:
        return len(self.center)

    def model(self):
        if getattr(self, "_model", None) is None:
            import torch

            from serving.core.lstm_ed import LSTMED, LSTMEDConfig

            m = LSTMED(LSTMEDConfig(**self.model_config))
            m.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.state_dict.items()})
            m.eval()
            self._model = m
        return self._model

    def scaler(self) -> scoring.RobustScaler:
        return scoring.RobustScaler(self.center, self.scale, self.clip)

    def errors(self, windows: np.ndarray, mode: str | None = None) -> np.ndarray:
        from serving.core.lstm_ed import reconstruct

        z = self.scaler().transform(windows)
        return np.abs(z - reconstruct(self.model(), z, mode or self.mode))

    def inputs(self, windows: np.ndarray) -> np.ndarray | None:
        """Robust-scaled, unclipped inputs for ``input_deviation`` (None when the score does not use them)."""
        if getattr(self, "score", "mahalanobis") != "channel_z" or not self.input_deviation:
            return None
        return (np.asarray(windows, dtype=np.float64) - self.center) / self.scale

    def features(self, err: np.ndarray, inputs: np.ndarray | None, history=None):
        """channel_z: per-point features after level removal, and the updated level history."""
        if self.input_deviation and inputs is None:
            raise ValueError("this detector scores input deviation: pass inputs (see inputs())")
        feats = scoring.channel_features(err, self.err_center, self.err_scale,
                                         inputs if self.input_deviation else None,
                                         getattr(self, "error_weight", 1.0))  # detectors pickled before: 1
        if self.level_windows <= 0:
            return feats, []
        start = self.level_init if history is None else history
        return scoring.remove_levels(feats, start, self.level_windows)

    def raw_scores(self, windows: np.ndarray, mode: str | None = None):
        """(errors, a_t) before adaptation; windows (N, L, C) raw values (channel_z: levels from validation)."""
        err = self.errors(windows, mode)
        if getattr(self, "score", "mahalanobis") == "channel_z":
            feats, _ = self.features(err, self.inputs(windows))
            return err, scoring.top_k_mean(feats, self.top_k_channels, self.score_transform)
        return err, scoring.mahalanobis(err, self.mu, self.precision)

    def score_windows(self, windows: np.ndarray, history: list | None = None) -> dict:
        """Score raw windows in time order. ``history`` carries recent-window levels between stream calls
        (returned under 'history': a list, or with ``adapt_guard`` a dict of three short lists; channel_z:
        ``{"levels": array, "adapt": ..., "seen": array}``); None starts fresh (channel_z: from validation).
        Adds 'tau': the threshold each window was judged by (``self.tau`` unless ``stream_memory``)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[2] != self.n_channels:
            raise ValueError(f"expected windows (N, L, {self.n_channels}), got {windows.shape}")
        return self.score_errors(self.errors(windows), history, inputs=self.inputs(windows))

    def score_errors(self, err: np.ndarray, history: list | None = None, inputs: np.ndarray | None = None) -> dict:
        """The scoring steps after the reconstruction: errors (N, L, C) = |z - z'| -> the score_windows dict
        (the bench feeds cached errors here). ``inputs``: the robust-scaled unclipped windows (``inputs()``),
        needed only by a channel_z detector with ``input_deviation``."""
        channel_z = getattr(self, "score", "mahalanobis") == "channel_z"
        levels, seen = None, None
        if channel_z:
            history = history if isinstance(history, dict) else None  # e.g. a session-2 list: start afresh
            feats, levels = self.features(err, inputs, None if history is None else history.get("levels"))
            a = scoring.top_k_mean(feats, self.top_k_channels, self.score_transform)
            seen = self.stream_init if history is None or "seen" not in history else history["seen"]
            history = None if history is None else history.get("adapt")
        else:
            a = scoring.mahalanobis(err, self.mu, self.precision)
        hist = history
        if self.adapt_windows > 0 and getattr(self, "adapt_guard", 0.0) > 0:  # detectors pickled before: 0
            a, hist = scoring.adapt_guarded(a, self.adapt_ref, history, self.adapt_windows, self.tau, self.delta,
                                            self.adapt_guard)
        elif self.adapt_windows > 0:
            a, hist = scoring.adapt_recent(a, self.adapt_ref, history, self.adapt_windows)
        taus = np.full(len(a), float(self.tau))
        if channel_z and getattr(self, "stream_memory", 0) > 0:  # detectors pickled before: fixed tau
            taus, seen = scoring.stream_threshold(scoring.window_stat(a, self.delta), seen, self.stream_far,
                                                  self.stream_memory, fallback=self.tau)
        counts = scoring.count_over_tau(a, taus[:, None])
        if channel_z:
            shares = scoring.feature_shares(feats, self.n_channels, a > taus[:, None])
            hist = {"levels": levels, "adapt": hist, "seen": seen if self.stream_memory > 0 else []}
        else:
            shares = scoring.channel_shares(err, self.mu, self.error_sd, a > self.tau)
        return {
            "scores": a,
            "count_over_tau": counts,
            "anomalous": scoring.decide(counts, self.delta),
            "max_score": a.max(axis=1) if len(a) else np.zeros(0),
            "top_channels": scoring.top_k(shares, 3),
            "tau": taus,
            "history": hist,
        }

    def score_series(self, x: np.ndarray) -> dict:
        """All full windows of a (T, C) series, scored in order; adds 'starts'."""
        x = np.asarray(x, dtype=np.float32)
        starts = window_starts(len(x), self.length, self.step)
        idx = starts[:, None] + np.arange(self.length)[None, :]
        out = self.score_windows(x[idx] if len(starts) else np.zeros((0, self.length, x.shape[1]), np.float32))
        out["starts"] = starts
        return out

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump(self, buf, protocol=pickle.HIGHEST_PROTOCOL)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> LSTMEDDetector:
        obj = pickle.loads(data)
        if not isinstance(obj, LSTMEDDetector):
            raise TypeError(f"expected LSTMEDDetector, got {type(obj).__name__}")
        return obj
