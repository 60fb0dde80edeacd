"""The fit's memory levers: a cap on the RKHS dimension per (species, lambda) and float32 storage of Psi.

Oracles: the uncapped model (a cap at or above every D changes nothing), the leading eigenvectors of
K_MM (the capped projector is the uncapped one's last columns), V^T K_MM V = I, and the weights count
predicted from the caps.
"""
import numpy as np
import pytest

import rhocast
from rhocast.kernels import rkhs_projector
from rhocast.model import DensityModel
from rhocast.structures import read_structures
from pathlib import Path

DATA = Path(__file__).with_name("data")
REFS = dict(basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1, progress=False)
SMALL = dict(cutoff=4.0, max_radial=4, max_angular=3, n_sparse=10, regularization=1e-8, n_features=None,
             solver="direct")


@pytest.fixture(scope="module")
def waters(tmp_path_factory):
    """References of 10 water monomers (STO-3G)."""
    path = tmp_path_factory.mktemp("levers") / "waters"
    rhocast.compute_references(read_structures(DATA / "water_monomers_50.xyz")[:10], path, **REFS)
    return rhocast.Dataset(path)


@pytest.fixture(scope="module")
def uncapped(waters):
    return DensityModel(**SMALL).fit(waters, waters.indices()[:8], progress=False)


def test_capped_projector_keeps_the_leading_eigenvectors():
    rng = np.random.default_rng(0)
    u = np.linalg.qr(rng.standard_normal((12, 12)))[0]
    vals = np.geomspace(1e-14, 1.0, 12)  # the three smallest are under the cut
    k = u @ np.diag(vals) @ u.T
    full = rkhs_projector(k, 1e-11)
    capped = rkhs_projector(k, 1e-11, max_dim=4)
    assert full.shape == (12, 9) and capped.shape == (12, 4)
    np.testing.assert_allclose(capped, full[:, -4:], rtol=0, atol=0)
    np.testing.assert_allclose(capped.T @ k @ capped, np.eye(4), atol=1e-10)
    # K V V^T K is the best rank-4 approximation of K: its four largest eigenpairs.
    best = u[:, -4:] @ np.diag(vals[-4:]) @ u[:, -4:].T
    np.testing.assert_allclose(k @ capped @ capped.T @ k, best, atol=1e-12)
    assert rkhs_projector(k, 1e-11, max_dim=50).shape == (12, 9)  # a cap above D changes nothing


def test_cap_at_or_above_every_dimension_changes_nothing(waters, uncapped):
    d_max = max(v.shape[1] for v in uncapped.projectors_.values())
    same = DensityModel(**SMALL, max_rkhs=d_max).fit(waters, waters.indices()[:8], progress=False)
    assert same.n_weights_ == uncapped.n_weights_
    np.testing.assert_array_equal(same.weights_, uncapped.weights_)
    a = waters.atoms(9)
    np.testing.assert_array_equal(same.predict(a), uncapped.predict(a))


def test_cap_shrinks_projectors_and_weights_as_predicted(waters, uncapped, tmp_path):
    cap = 12
    dims = {k: v.shape[1] for k, v in uncapped.projectors_.items()}
    assert any(d > cap for d in dims.values()), dims  # the cap must bite somewhere
    capped = DensityModel(**SMALL, max_rkhs=cap).fit(waters, waters.indices()[:8], progress=False)
    for key, v in capped.projectors_.items():
        assert v.shape == (uncapped.projectors_[key].shape[0], min(cap, dims[key]))
        np.testing.assert_array_equal(v, uncapped.projectors_[key][:, -v.shape[1]:])
    channels = {(z, lam): sum(1 for l, _ in uncapped.auxbasis_.radial_channels(z) if l == lam) for z, lam in dims}
    assert capped.n_weights_ == sum(n * min(cap, dims[k]) for k, n in channels.items())
    assert capped.n_weights_ < uncapped.n_weights_
    # A lower-rank model of the same data: close to the uncapped prediction, not equal to it.
    a = waters.atoms(9)
    c, c_full = capped.predict(a), uncapped.predict(a)
    assert 0 < np.linalg.norm(c - c_full) < 0.05 * np.linalg.norm(c_full)
    capped.save(tmp_path / "m.h5")
    loaded = DensityModel.load(tmp_path / "m.h5")
    assert loaded.max_rkhs == cap
    np.testing.assert_array_equal(loaded.predict(a), c)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_cap_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="max_rkhs must be None"):
        rhocast.model.check_params({"max_rkhs": bad})


def _regression_pair(seed=0):
    """The same random problem in a float32-Psi Regression and in a float64 one fed Psi rounded to float32
    (the exact oracle: products accumulate in double, so only the storage rounding may differ)."""
    from rhocast import _core
    from rhocast.sparse import from_dense

    rng = np.random.default_rng(seed)
    low, ref = _core.Regression(12, 1e-3, "float32"), _core.Regression(12, 1e-3)
    for _ in range(3):
        a = rng.normal(size=(8, 8))
        metric = from_dense(a @ a.T + 8 * np.eye(8), [4, 4])
        shells = np.array([[0, 0, 0, 0], [1, 1, 3, 1], [4, 0, 0, 2], [5, 1, 3, 3]], dtype=np.int32)
        psi = [rng.normal(size=(1, 3)), rng.normal(size=(3, 9)), rng.normal(size=(1, 3)), rng.normal(size=(3, 9))]
        target = rng.normal(size=8)
        low.add_structure(metric, target, shells, psi)
        ref.add_structure(metric, target, shells, [p.astype(np.float32).astype(float) for p in psi])
    return low, ref


def test_float32_psi_equals_float64_of_rounded_psi_and_halves_its_memory():
    low, ref = _regression_pair()
    w = np.random.default_rng(1).normal(size=12)
    close = dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(low.hessian_product(w), ref.hessian_product(w), **close)
    np.testing.assert_allclose(low.gradient(w), ref.gradient(w), **close)
    np.testing.assert_allclose(low.rhs(), ref.rhs(), **close)
    np.testing.assert_allclose(low.hessian(), ref.hessian(), **close)
    np.testing.assert_allclose(low.loss(w), ref.loss(w), **close)
    for a, b in zip(low.jacobi_blocks([0, 3], [3, 9]), ref.jacobi_blocks([0, 3], [3, 9])):
        np.testing.assert_allclose(a, b, **close)
    np.testing.assert_allclose(low.predict(0, w), ref.predict(0, w), **close)
    assert 2 * low.psi_memory_bytes == ref.psi_memory_bytes == 8 * 3 * (2 * 3 + 2 * 27)
    assert low.memory_bytes - low.psi_memory_bytes == ref.memory_bytes - ref.psi_memory_bytes


def test_float32_fit_predicts_as_float64(waters, uncapped):
    low = DensityModel(**SMALL, psi_precision="float32").fit(waters, waters.indices()[:8], progress=False)
    for i in (8, 9):
        a = waters.atoms(i)
        c, c_ref = low.predict(a), uncapped.predict(a)
        assert 0 < np.linalg.norm(c - c_ref) <= 1e-5 * np.linalg.norm(c_ref)
    part, ref = low.fit_report_["ranks"][0], uncapped.fit_report_["ranks"][0]
    assert np.isclose(2 * part["psi_mb"], ref["psi_mb"], rtol=1e-12)
    assert np.isclose(part["metrics_mb"], ref["metrics_mb"], rtol=1e-12)
    assert np.isclose(part["psi_and_metrics_mb"], part["psi_mb"] + part["metrics_mb"], rtol=1e-12)


def test_bad_psi_precision_is_refused_by_name():
    from rhocast import _core

    with pytest.raises(ValueError, match="psi_precision must be one of 'float64', 'float32', not 'half'"):
        rhocast.model.check_params({"psi_precision": "half"})
    with pytest.raises(ValueError, match="psi_precision must be 'float64' or 'float32'"):
        _core.Regression(3, 1e-3, "float16")
