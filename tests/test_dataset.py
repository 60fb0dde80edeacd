"""The reference dataset reader: round trip, splits, corrupt files."""
import numpy as np
import pytest
from ase.build import molecule

import rhocast
from rhocast.dataset import Dataset


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "r.h5"
    mols = []
    for k in range(6):
        a = molecule("H2O"); a.positions[1, 1] += 0.02 * k; mols.append(a)
    rhocast.compute_references(mols, path, basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1,
                               progress=False)
    return path, mols


def test_round_trip(small_dataset):
    path, mols = small_dataset
    ds = Dataset(path)
    assert len(ds) == 6 and ds.converged.all() and ds.metric == "coulomb"
    for i, rec in enumerate(ds):
        np.testing.assert_allclose(rec["atoms"].positions, mols[i].positions, atol=1e-12)
        assert rec["coefficients"].size == ds.auxbasis.offsets(mols[i].numbers)[-1]
        e = rec["energies"]
        parts = e["kinetic"] + e["electron_nuclear"] + e["hartree"] + e["xc"] + e["nuclear_repulsion"]
        assert abs(parts - e["total"]) < 1e-8  # the components add up to the SCF energy
    assert ds.settings["basis"] == "sto-3g" and ds.settings["auxbasis"] == "def2-universal-jkfit"
    assert "pyscf_version" in ds.versions and "libxc_version" in ds.versions


def test_split_is_reproducible_and_disjoint(small_dataset):
    ds = Dataset(small_dataset[0])
    a, b = ds.split(seed=3, fractions=(0.5, 0.25, 0.25)), ds.split(seed=3, fractions=(0.5, 0.25, 0.25))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    allidx = np.concatenate(a)
    assert sorted(allidx) == list(range(6))
    assert any(not np.array_equal(ds.split(seed=s, fractions=(0.5, 0.25, 0.25))[0], a[0]) for s in range(4, 9))


def test_truncated_file_gives_clear_error(small_dataset, tmp_path):
    data = small_dataset[0].read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated or not an HDF5 file"):
        Dataset(cut)
    with pytest.raises(FileNotFoundError):
        Dataset(tmp_path / "none.h5")
