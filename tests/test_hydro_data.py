"""Synthetic water levels and the Logan River CSV round trip through training.data.hydro."""

import numpy as np

from training.data import hydro
from training.data.synthetic_hydro import KINDS, generate, write_logan_csv


def test_generator_is_seeded_and_labels_every_kind():
    a, b = generate(3000, seed=5), generate(3000, seed=5)
    np.testing.assert_array_equal(a.value.values, b.value.values)
    assert not np.array_equal(a.value.values, generate(3000, seed=6).value.values)
    assert set(KINDS) <= set(a.kind[a.label == 1])
    assert (a.label == 0).all() == False  # noqa: E712
    assert a.label[: int(0.3 * 3000)].sum() == 0  # the history prefix is clean
    assert a.value.isna().any()  # unlabeled gaps
    stuck = a.value.values[(a.kind == "stuck").values]
    assert np.ptp(stuck[:10]) == 0


def test_logan_layout_round_trip(tmp_path):
    df = generate(800, seed=2)
    path = write_logan_csv(df, tmp_path / "LRO_data" / "SynthA2021.csv")
    assert hydro.series_ids(tmp_path) == ["SynthA/stage"]
    back = hydro.series(hydro.read_file(path), "stage")
    np.testing.assert_array_equal(back.ts.values, df.ts.values)
    np.testing.assert_array_equal(back.label.values, df.label.values)
    np.testing.assert_allclose(back.value.values, df.value.round(4).values, equal_nan=True)
    assert open(path).readline().strip() == "datetime,stage,stage_cor,stage_qual"
    assert "NULL" in path.read_text()
