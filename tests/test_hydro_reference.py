"""The reference flaggers of bench/hydro_reference.py: scored on hydro_bench's span with its metrics."""

import numpy as np
import pytest

from bench.hydro_reference import flaggers, score_file


def test_flaggers_read_no_value_and_flag_at_their_rate():
    out = flaggers(20_000, 0.2, seeds=3)
    assert out["every point"][0].all()
    rand = out["random at ARIMA's rate (20.0%)"]
    assert len(rand) == 3 and not np.array_equal(rand[0], rand[1])
    assert [f.mean() for f in rand] == pytest.approx([0.2] * 3, abs=0.01)
    assert out["random at 5%"][0].mean() == pytest.approx(0.05, abs=0.01)


def test_every_point_scores_event_f1_one_and_point_f1_of_the_label_share():
    n = 96 * 40  # 40 days of 15-min readings; the first 14 days are history
    ts = np.arange(n, dtype=np.int64) * 900_000
    labels = np.zeros(n, dtype=bool)
    labels[96 * 20 : 96 * 22] = True  # a two-day block in the scored span
    labels[96 * 30 + 5] = True  # and a single point
    values = np.ones(n)
    values[96 * 25 : 96 * 25 + 10] = np.nan  # missing readings are not scored
    res = score_file(values, ts, labels, arima_rate=0.1, seeds=2)
    scored = slice(96 * 14, n)
    valid = np.isfinite(values[scored])
    p = labels[scored][valid].mean()
    assert res["scored_points"] == valid.sum()
    assert res["label_share"] == pytest.approx(p)
    every = res["every point"]
    assert every["event_f1"] == 1.0 and every["specificity"] == 0.0
    assert every["f1"] == pytest.approx(2 * p / (1 + p))
    rand = res["random at ARIMA's rate (10.0%)"]
    assert rand["draws"] == 2 and 0 < rand["f1"] < every["f1"]
