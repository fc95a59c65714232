"""Three simple per-point scorers for the bench, fitted on training rows, scored on any rows.

All share the detector's robust scaling, windows and tau/delta rule, so only the point score differs.
"""

from __future__ import annotations

import numpy as np

from serving.core.scoring import RobustScaler

NO_CLIP = 1e6  # baselines score raw deviations; clipping would tie the extremes they rank


class ZScoreMax:
    """max over channels of |x_s| after robust scaling (median/quantile range)."""

    name = "zscore_max"

    def fit(self, train: np.ndarray):
        self.scaler = RobustScaler.fit(train, clip=NO_CLIP)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        return np.abs(self.scaler.transform(x)).max(axis=1)


class PCARecon:
    """Squared reconstruction error from the top principal components (95% of variance)."""

    name = "pca"

    def __init__(self, variance: float = 0.95, seed: int = 0):
        self.variance, self.seed = variance, seed

    def fit(self, train: np.ndarray):
        from sklearn.decomposition import PCA

        self.scaler = RobustScaler.fit(train, clip=NO_CLIP)
        self.pca = PCA(n_components=self.variance, svd_solver="full", random_state=self.seed)
        self.pca.fit(self.scaler.transform(train))
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        z = self.scaler.transform(x)
        rec = self.pca.inverse_transform(self.pca.transform(z))
        return ((z - rec) ** 2).sum(axis=1)


class IsoForest:
    """Negated IsolationForest score_samples (higher = more anomalous)."""

    name = "isolation_forest"

    def __init__(self, seed: int = 0, n_estimators: int = 100):
        self.seed, self.n_estimators = seed, n_estimators

    def fit(self, train: np.ndarray):
        from sklearn.ensemble import IsolationForest

        self.scaler = RobustScaler.fit(train, clip=NO_CLIP)
        self.model = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed, n_jobs=1)
        self.model.fit(self.scaler.transform(train))
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        return -self.model.score_samples(self.scaler.transform(x))


BASELINES = {c.name: c for c in (ZScoreMax, PCARecon, IsoForest)}
