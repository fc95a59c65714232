"""Everything needed to score raw (unscaled) windows of one machine with a trained LSTM-ED.

Pipeline per window: robust scaling -> reconstruction (``mode``) -> e_t = |x_t - x'_t| -> Mahalanobis a_t
-> (optional) relative to recent windows -> count of a_t > tau -> anomalous when count > delta,
plus the top-3 channels by error share. Picklable (weights are kept as numpy arrays), see to_bytes().
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

    def raw_scores(self, windows: np.ndarray, mode: str | None = None):
        """(errors, a_t) before adaptation; windows (N, L, C) raw values."""
        err = self.errors(windows, mode)
        return err, scoring.mahalanobis(err, self.mu, self.precision)

    def score_windows(self, windows: np.ndarray, history: list | None = None) -> dict:
        """Score raw windows in time order. ``history`` carries recent-window levels between stream calls
        (returned under 'history': a list, or with ``adapt_guard`` a dict of three short lists); None starts
        fresh."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[2] != self.n_channels:
            raise ValueError(f"expected windows (N, L, {self.n_channels}), got {windows.shape}")
        return self.score_errors(self.errors(windows), history)

    def score_errors(self, err: np.ndarray, history: list | None = None) -> dict:
        """The scoring steps after the reconstruction: errors (N, L, C) = |z - z'| -> the score_windows dict
        (the bench feeds cached errors here)."""
        a = scoring.mahalanobis(err, self.mu, self.precision)
        hist = history
        if self.adapt_windows > 0 and getattr(self, "adapt_guard", 0.0) > 0:  # detectors pickled before: 0
            a, hist = scoring.adapt_guarded(a, self.adapt_ref, history, self.adapt_windows, self.tau, self.delta,
                                            self.adapt_guard)
        elif self.adapt_windows > 0:
            a, hist = scoring.adapt_recent(a, self.adapt_ref, history, self.adapt_windows)
        counts = scoring.count_over_tau(a, self.tau)
        shares = scoring.channel_shares(err, self.mu, self.error_sd, a > self.tau)
        return {
            "scores": a,
            "count_over_tau": counts,
            "anomalous": scoring.decide(counts, self.delta),
            "max_score": a.max(axis=1) if len(a) else np.zeros(0),
            "top_channels": scoring.top_k(shares, 3),
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
