"""Model file format version 2 (self-describing: the auxiliary-basis shells are in the file) against
version 1, and the exported binary for C/C++ hosts."""
from pathlib import Path

import h5py
import numpy as np
import pytest
from ase import Atoms

from rhocast import model as model_module
from rhocast.basis import AuxiliaryBasis
from rhocast.model import DensityModel

DATA = Path(__file__).parent / "data"


def _dimer():
    d = np.load(DATA / "model_v1_predictions.npz")
    return Atoms(numbers=d["dimer_numbers"], positions=d["dimer_positions"]), d["dimer_coefficients"]


@pytest.fixture(scope="module")
def v1():
    return DensityModel.load(DATA / "model_v1.h5")


def test_v1_loads_with_its_stored_predictions(v1):
    """Stated result for a version-1 file: it loads (PySCF expands its basis name) and predicts what the
    numpy predictor wrote."""
    with h5py.File(DATA / "model_v1.h5") as f:
        assert int(f.attrs["format_version"]) == 1
    atoms, ref = _dimer()
    np.testing.assert_allclose(v1.predict(atoms), ref, rtol=0, atol=1e-12)


def test_v2_round_trip_is_identical_and_needs_no_pyscf(v1, tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    v1.save(path)
    with h5py.File(path) as f:
        assert int(f.attrs["format_version"]) == model_module.FORMAT_VERSION == 2
        assert "normalisation included" in f["auxbasis"].attrs["convention"]
        assert '"length_unit": "Angstrom"' in f.attrs["descriptor"]
        assert str(tmp_path) not in str(dict(f.attrs))  # no absolute paths

    def no_pyscf(*args, **kwargs):
        raise AssertionError("loading a version-2 model expanded a basis name")

    monkeypatch.setattr(AuxiliaryBasis, "__init__", no_pyscf)
    v2 = DensityModel.load(path)
    for z, shells in v1.auxbasis_.shells.items():
        assert [s.l for s in v2.auxbasis_.shells[z]] == [s.l for s in shells]
        for a, b in zip(v2.auxbasis_.shells[z], shells):
            np.testing.assert_array_equal(a.exponents, b.exponents)
            np.testing.assert_array_equal(a.coefficients, b.coefficients)
    atoms, _ = _dimer()
    np.testing.assert_array_equal(v2.predict(atoms), v1.predict(atoms))


def test_unreadable_version_names_the_readable_ones(v1, tmp_path):
    path = tmp_path / "model.h5"
    v1.save(path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 7
    with pytest.raises(ValueError, match="format version 7; this rhocast reads version 1 or 2"):
        DensityModel.load(path)


def test_shipped_export_is_current(v1, tmp_path):
    """tests/data/model_v1.rcm (read by the C++ test) is what export() writes today."""
    v1.export(tmp_path / "m.rcm")
    assert (tmp_path / "m.rcm").read_bytes() == (DATA / "model_v1.rcm").read_bytes()


def test_model_for_prediction_predicts_the_same_from_smaller_arrays(v1, tmp_path):
    """Thin projectors V w (lambda > 0) and unit weights give the original coefficients to rounding;
    float32 sparse features move them by far less than any model error; the file shrinks and round-trips."""
    atoms, ref = _dimer()
    exact = v1.for_prediction(float32_features=False)
    assert exact.n_weights_ < v1.n_weights_
    for (z, lam), v in exact.projectors_.items():
        assert v.shape[1] == (v1.projectors_[(z, lam)].shape[1] if lam == 0 else
                              sum(1 for l, _ in v1.auxbasis_.radial_channels(z) if l == lam))
    np.testing.assert_allclose(exact.predict(atoms), ref, rtol=0, atol=1e-12)
    small = v1.for_prediction()
    small.save(tmp_path / "small.h5")
    v1.save(tmp_path / "full.h5")
    assert (tmp_path / "small.h5").stat().st_size < 0.6 * (tmp_path / "full.h5").stat().st_size
    loaded = DensityModel.load(tmp_path / "small.h5")
    assert loaded.sparse_features_[1][0].dtype == np.float32
    delta = loaded.predict(atoms) - ref
    assert 0 < np.abs(delta).max() < 1e-6 * np.abs(ref).max()
