"""Thin MLflow pyfunc around LSTMEDDetector: a DataFrame of one series' rows in, per-window verdicts out.

Input columns: the training channel names (``c0..c37`` by default) in any order; other columns (ts,
series_id, ...) are ignored. The core does all the math; this class only moves data in and out.
"""

from __future__ import annotations

import json

import mlflow.pyfunc
import numpy as np
import pandas as pd

from serving.core.detector import LSTMEDDetector

OUTPUT_COLUMNS = ["window_start", "window_end", "count_over_tau", "anomalous", "max_score", "tau", "top_channels"]


class LSTMEDPyfunc(mlflow.pyfunc.PythonModel):
    def __init__(self, detector: LSTMEDDetector):
        self.detector = detector

    def _matrix(self, df: pd.DataFrame) -> np.ndarray:
        names = self.detector.channel_names
        if all(n in df.columns for n in names):
            return df[names].to_numpy(dtype=np.float32)
        fallback = [f"c{i}" for i in range(self.detector.n_channels)]
        if all(n in df.columns for n in fallback):
            return df[fallback].to_numpy(dtype=np.float32)
        missing = [n for n in names if n not in df.columns]
        raise ValueError(f"input lacks channel columns {missing[:5]}... (expected {names[:3]}...)")

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        out = self.detector.score_series(self._matrix(pd.DataFrame(model_input)))
        names = self.detector.channel_names
        starts = out["starts"]
        return pd.DataFrame({
            "window_start": starts.astype(np.int64),
            "window_end": (starts + self.detector.length).astype(np.int64),
            "count_over_tau": out["count_over_tau"].astype(np.int64),
            "anomalous": out["anomalous"].astype(bool),
            "max_score": out["max_score"].astype(np.float64),
            # the threshold the window was judged by (the stream threshold moves with the windows of this call)
            "tau": out["tau"].astype(np.float64),
            "top_channels": [json.dumps([{"channel": names[c], "index": c, "share": round(s, 6)} for c, s in top])
                             for top in out["top_channels"]],
        }, columns=OUTPUT_COLUMNS)
