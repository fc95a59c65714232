"""LSTM-ED through MLflow: one run per machine, registered, promoted on a validation metric, loaded by
``models:/lstm_ed-<machine>@production`` with scores identical to the in-memory detector."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.data.synthetic_metrics import make_machine
from training.lstm_ed.pipeline import PROMOTION_METRIC, TrainConfig, promote_machine, train_machine

TINY = TrainConfig(hidden=16, max_epochs=2, batch_size=32, train_step=20, patience=2, threads=1)


def test_register_promote_load_identical_scores(tmp_root):
    import mlflow
    from mlflow import MlflowClient

    from training import registry

    m = make_machine(3, n_train=1200, n_test=800, n_anomalies=2, period=300)
    r = train_machine("machine-9-7", m.train, m.test, m.test_labels, m.segments, config=TINY)
    assert r["model_name"] == "lstm_ed-machine-9-7" and r["model_version"] is not None
    assert str(registry.version_by_alias(r["model_name"], "challenger").version) == r["model_version"]
    p = promote_machine("machine-9-7")
    assert p.promoted and p.reason == "no production version yet"

    run = MlflowClient().get_run(r["run_id"])
    assert run.data.tags["machine"] == "machine-9-7" and run.data.tags["data_version"].startswith("sha1:")
    assert "git_commit" in run.data.tags and PROMOTION_METRIC in run.data.metrics
    for mode in ("unsupervised", "labeled", "oracle"):
        assert f"test_{mode}_window_f1" in run.data.metrics
    assert len(MlflowClient().get_metric_history(r["run_id"], "val_loss")) == 2
    arts = {a.path for a in MlflowClient().list_artifacts(r["run_id"])}
    assert {"loss_curve.png", "scores_vs_labels.png", "confusion.md"} <= arts

    loaded = mlflow.pyfunc.load_model(f"models:/{r['model_name']}@production")
    det = loaded.unwrap_python_model().detector
    mem = r["detector"].score_series(m.test)
    np.testing.assert_array_equal(det.score_series(m.test)["scores"], mem["scores"])
    df = pd.DataFrame(m.test, columns=[f"c{i}" for i in range(38)])
    out = loaded.predict(df)
    assert out["anomalous"].tolist() == mem["anomalous"].tolist()
    assert out["window_start"].tolist() == mem["starts"].tolist()
    np.testing.assert_allclose(out["max_score"].to_numpy(), mem["max_score"])
    np.testing.assert_allclose(out["tau"].to_numpy(), mem["tau"])  # the per-window threshold, served too

    # a second version with a worse validation metric does not take production
    r2 = train_machine("machine-9-7", m.train, config=TrainConfig(hidden=4, max_epochs=1, batch_size=32, train_step=20, threads=1))
    p2 = promote_machine("machine-9-7")
    better = r2["metrics"][PROMOTION_METRIC] >= r["metrics"][PROMOTION_METRIC]
    assert p2.promoted == better and p2.version == r2["model_version"]
    assert str(registry.version_by_alias(r["model_name"], "production").version) == (
        r2["model_version"] if better else r["model_version"])


CHILD = """
import sys
from training.data.synthetic_metrics import make_machine
from training.lstm_ed.pipeline import TrainConfig, promote_machine, train_machine
m = make_machine(int(sys.argv[1]), n_train=600, n_test=300, n_anomalies=1, period=200)
train_machine(sys.argv[2], m.train, m.test, m.test_labels, m.segments,
              config=TrainConfig(hidden=4, max_epochs=1, batch_size=32, train_step=20, threads=1))
print(promote_machine(sys.argv[2]).promoted)
"""


def test_concurrent_writers_do_not_hit_database_locked(tmp_root):
    """Three processes train, log, register and promote at once against one SQLite store."""
    import os
    import subprocess
    import sys

    from serving.settings import REPO_ROOT
    from training import registry

    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(20 + i), f"machine-7-{i}"], cwd=REPO_ROOT,
                              env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "locked" not in err.lower(), err[-2000:]
        assert out.strip().endswith("True")
    for i in range(3):
        assert registry.version_by_alias(registry.registry_name("lstm_ed", f"machine-7-{i}"), "production")
