"""Hydro (univariate sensor) family: fitting, rolling evaluation, MLflow logging, plots."""
