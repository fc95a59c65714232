import numpy as np
import pytest

from serving.core.windows import per_point_max, sliding_windows, window_starts


def test_window_starts_paper_defaults():
    assert window_starts(100).tolist() == [0]
    assert window_starts(99).tolist() == []
    assert window_starts(280).tolist() == [0, 90, 180]
    assert window_starts(279).tolist() == [0, 90]


def test_window_starts_custom_and_invalid():
    assert window_starts(10, length=4, step=3).tolist() == [0, 3, 6]
    with pytest.raises(ValueError):
        window_starts(10, length=0, step=1)


def test_sliding_windows_content_and_overlap():
    x = np.arange(30, dtype=float).reshape(15, 2)
    w = sliding_windows(x, length=5, step=4)
    assert w.shape == (3, 5, 2) and w.dtype == np.float32
    assert w[1, 0].tolist() == [8.0, 9.0]
    assert w[0, 4].tolist() == w[1, 0].tolist()  # one shared point between consecutive windows
    assert w[2, -1].tolist() == [24.0, 25.0]
    assert sliding_windows(x, length=20, step=1).shape == (0, 20, 2)


def test_per_point_max_folds_overlaps():
    vals = np.array([[1.0, 2.0, 3.0], [5.0, 0.0, 1.0]])
    out = per_point_max(vals, np.array([0, 2]), 6)
    assert out[:5].tolist() == [1.0, 2.0, 5.0, 0.0, 1.0]
    assert np.isnan(out[5])
