"""Thin MLflow pyfunc around HydroDetector: a DataFrame (ts, value[, covariate]) of one series in, per-point
rows out. ``covariate`` (optional): the ice rule's second variable, the same site's water temperature."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from serving.core.hydro_detector import HydroDetector

OUTPUT_COLUMNS = ["ts", "value", "forecast", "lower", "upper", "candidate", "anomaly_probability", "anomalous",
                  "reasons"]


class HydroPyfunc(mlflow.pyfunc.PythonModel):
    def __init__(self, detector: HydroDetector):
        self.detector = detector

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        df = pd.DataFrame(model_input)
        if "value" not in df.columns:
            raise ValueError(f"input needs a 'value' column (and 'ts' in epoch ms); got {list(df.columns)}")
        values = df["value"].to_numpy(dtype=np.float64)
        ts = df["ts"].to_numpy(dtype=np.int64) if "ts" in df.columns else np.arange(len(df), dtype=np.int64)
        cov = df["covariate"].to_numpy(dtype=np.float64) if "covariate" in df.columns else None
        out = self.detector.score_series(values, ts, covariate=cov)
        return pd.DataFrame({
            "ts": ts,
            "value": values,
            "forecast": out["forecast"],
            "lower": out["lower"],
            "upper": out["upper"],
            "candidate": out["candidate"].astype(bool),
            "anomaly_probability": out["anomaly_probability"],
            "anomalous": out["anomalous"].astype(bool),
            "reasons": out["reasons"].astype(np.int64),  # bit mask of the rules that flagged the point
        }, columns=OUTPUT_COLUMNS)
