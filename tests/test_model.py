"""The density model: solver oracles, equivariance of predictions, persistence, learning."""
import numpy as np
import pytest
from ase.build import molecule

import rhocast
from rhocast import _core
from rhocast.model import DensityModel
from rhocast.overlap import overlap_matrix
from rhocast.sources import distorted_waters
from rhocast.sparse import from_dense
from equivariance import random_rotation, wigner_d_real

SMALL = dict(cutoff=3.5, max_radial=4, max_angular=3, n_sparse=8, regularization=1e-6)
REFS = dict(basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1, progress=False)


def _distorted_waters(n, seed):
    return distorted_waters(n, seed, amplitude=0.06)


@pytest.fixture(scope="module")
def water_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "w.h5"
    rhocast.compute_references(_distorted_waters(24, 0), path, **REFS)
    return rhocast.Dataset(path)


def _random_problem(seed=0, n_structures=4, n_weights=12):
    """A synthetic regression: random SPD metrics, random Psi, random targets."""
    rng = np.random.default_rng(seed)
    reg = _core.Regression(n_weights, 1e-3)
    for _ in range(n_structures):
        sizes = [4, 4]  # two atoms, shells l=0 and l=1 each
        a = rng.normal(size=(8, 8))
        metric = from_dense(a @ a.T + 8 * np.eye(8), sizes)
        shells = np.array([[0, 0, 0, 0], [1, 1, 3, 1], [4, 0, 0, 2], [5, 1, 3, 3]], dtype=np.int32)
        psi = [rng.normal(size=(1, 3)), rng.normal(size=(3, 9)), rng.normal(size=(1, 3)), rng.normal(size=(3, 9))]
        reg.add_structure(metric, rng.normal(size=8), shells, psi)
    return reg


def test_gradient_equals_finite_differences():
    reg = _random_problem()
    w = np.random.default_rng(1).normal(size=reg.n_weights)
    g = reg.gradient(w)
    h = 1e-6
    fd = np.array([(reg.loss(w + h * e) - reg.loss(w - h * e)) / (2 * h) for e in np.eye(reg.n_weights)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_hessian_product_equals_assembled_hessian():
    reg = _random_problem()
    d = np.random.default_rng(2).normal(size=reg.n_weights)
    hess = reg.hessian()
    np.testing.assert_allclose(reg.hessian_product(d), hess @ d, rtol=1e-12, atol=1e-12)
    # and the Hessian is the derivative of the gradient
    w = np.zeros(reg.n_weights)
    np.testing.assert_allclose(reg.gradient(w + d) - reg.gradient(w), hess @ d, rtol=1e-10, atol=1e-10)
    assert np.linalg.eigvalsh(hess).min() > 0


def test_cg_equals_direct(water_dataset):
    direct = DensityModel(**SMALL, solver="direct").fit(water_dataset, progress=False)
    cg = DensityModel(**SMALL, solver="cg", cg_tol=1e-12).fit(water_dataset, progress=False)
    assert 0 < cg.cg_iterations_ < cg.max_iter  # converged, no warning
    np.testing.assert_allclose(cg.weights_, direct.weights_, rtol=1e-6, atol=1e-6 * np.abs(direct.weights_).max())
    # the loss decreases along the CG iterations
    assert np.all(np.diff(cg.loss_history_) <= 1e-12 * abs(cg.loss_history_[0]))


def test_block_jacobi_preconditioner_reduces_iterations(water_dataset):
    model = DensityModel(**SMALL, solver="cg", cg_tol=1e-10).fit(water_dataset, progress=False)
    reg = _core.Regression(model.n_weights_, model.regularization)
    for i in water_dataset.indices():
        a = water_dataset.atoms(i)
        shells, psi = model._structure_maps(a)
        reg.add_structure(overlap_matrix(a, model.auxbasis_), water_dataset.coefficients(i) - model._baseline_vector(a),
                          shells, psi)
    b = reg.rhs()
    w, r = np.zeros_like(b), b.copy()
    p, rr, it = r.copy(), r @ r, 0  # plain CG
    while np.linalg.norm(r) > 1e-10 * np.linalg.norm(b) and it < 20 * len(b):
        hp = reg.hessian_product(p)
        alpha = rr / (p @ hp)
        w += alpha * p
        r -= alpha * hp
        p = r + (r @ r / rr) * p
        rr = r @ r
        it += 1
    assert model.cg_iterations_ < it


def test_checkpoint_and_resume(water_dataset, tmp_path):
    ck = tmp_path / "cg.npz"
    full = DensityModel(**SMALL, solver="cg", cg_tol=1e-12).fit(water_dataset, progress=False)
    with pytest.warns(UserWarning, match="CG stopped"):
        DensityModel(**SMALL, solver="cg", cg_tol=1e-12, max_iter=6).fit(water_dataset, progress=False,
                                                                         checkpoint=ck, checkpoint_every=3)
    assert ck.exists()
    resumed = DensityModel(**SMALL, solver="cg", cg_tol=1e-12).fit(water_dataset, progress=False, checkpoint=ck,
                                                                   resume=True)
    assert len(resumed.loss_history_) == resumed.cg_iterations_ - 6  # continued from iteration 6
    np.testing.assert_allclose(resumed.weights_, full.weights_, rtol=1e-6, atol=1e-8)
    # Without resume=True a checkpoint is not used: CG starts from zero.
    fresh = DensityModel(**SMALL, solver="cg", cg_tol=1e-12).fit(water_dataset, progress=False, checkpoint=ck)
    assert len(fresh.loss_history_) == fresh.cg_iterations_


def test_checkpoint_of_another_problem_is_refused(water_dataset, tmp_path):
    """Same size, other regularisation (or other data): the fingerprint differs, resume is an error."""
    ck = tmp_path / "cg.npz"
    with pytest.warns(UserWarning, match="CG stopped"):
        DensityModel(**SMALL, solver="cg", max_iter=3).fit(water_dataset, progress=False, checkpoint=ck,
                                                          checkpoint_every=1)
    other = DensityModel(**{**SMALL, "regularization": 10 * SMALL.get("regularization", 1e-8)}, solver="cg")
    with pytest.raises(ValueError, match="belongs to another problem"):
        other.fit(water_dataset, progress=False, checkpoint=ck, resume=True)
    subset = DensityModel(**SMALL, solver="cg")
    with pytest.raises(ValueError, match="belongs to another problem"):
        subset.fit(water_dataset, water_dataset.indices()[:-1], progress=False, checkpoint=ck, resume=True)


def test_scikit_learn_parameters():
    """Parameters come from the constructor's signature; set_params validates names; clone works."""
    model = DensityModel(zeta=3.0, n_sparse={"H": 5, "O": 7})
    params = model.get_params()
    assert params["zeta"] == 3.0 and "checkpoint" not in params
    assert DensityModel(**params).get_params() == params
    assert model.set_params(regularization=1e-4) is model and model.regularization == 1e-4
    with pytest.raises(ValueError, match="unknown hyper-parameters \\['zet'\\]"):
        model.set_params(zet=2)
    sklearn_base = pytest.importorskip("sklearn.base", reason="clone needs the optional scikit-learn (pip install '.[sklearn]')")
    assert sklearn_base.clone(model).get_params() == model.get_params()


def test_prediction_rotates_with_the_structure(water_dataset):
    model = DensityModel(**SMALL).fit(water_dataset, progress=False)
    a = _distorted_waters(1, 99)[0]
    c = model.predict(a)
    basis = model.auxbasis_
    for seed in (3, 4):
        rot = random_rotation(seed)
        b = a.copy()
        b.positions = a.positions @ rot.T
        cb = model.predict(b)
        off = 0
        for z in a.numbers:
            for shell in basis.shells[z]:
                n = 2 * shell.l + 1
                np.testing.assert_allclose(cb[off:off + n], wigner_d_real(shell.l, rot) @ c[off:off + n], atol=1e-8)
                off += n


def test_save_load_round_trip_and_determinism(water_dataset, tmp_path):
    model = DensityModel(**SMALL, n_features=40).fit(water_dataset, progress=False)
    model.save(tmp_path / "m.h5")
    loaded = DensityModel.load(tmp_path / "m.h5")
    again = DensityModel(**SMALL, n_features=40).fit(water_dataset, progress=False)
    test = _distorted_waters(3, 7)
    for a in test:  # identical up to BLAS summation order
        np.testing.assert_allclose(loaded.predict(a), model.predict(a), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(again.predict(a), model.predict(a), rtol=1e-12, atol=1e-13)


def test_load_refuses_other_versions(water_dataset, tmp_path):
    import h5py

    model = DensityModel(**SMALL).fit(water_dataset, progress=False)
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        DensityModel.load(tmp_path / "m.h5")


def test_serial_equals_parallel():
    reg = _random_problem(seed=5, n_structures=16)
    w = np.random.default_rng(6).normal(size=reg.n_weights)
    n = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        serial = (reg.loss(w), reg.gradient(w), reg.hessian_product(w), reg.rhs())
        _core.set_num_threads(2)
        parallel = (reg.loss(w), reg.gradient(w), reg.hessian_product(w), reg.rhs())
    finally:
        _core.set_num_threads(n)
    for a, b in zip(serial, parallel):  # only the summation order differs
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_coulomb_metric_training(water_dataset):
    """Each model is best in the metric it was trained in: the Coulomb-metric model has the smaller
    Coulomb (Hartree-energy) error on its training data, the overlap model the smaller L2 error."""
    from rhocast.model import loss_metric_matrix

    models = {m: DensityModel(**SMALL, loss_metric=m).fit(water_dataset, progress=False) for m in ("coulomb", "overlap")}
    err = {}
    for trained in models:
        for measured in ("coulomb", "overlap"):
            total = 0.0
            for i in water_dataset.indices():
                a = water_dataset.atoms(int(i))
                d = models[trained].predict(a) - water_dataset.coefficients(int(i))
                total += loss_metric_matrix(a, models[trained].auxbasis_, measured).bilinear(d, d)
            err[trained, measured] = total
    assert err["coulomb", "coulomb"] < err["overlap", "coulomb"], err
    assert err["overlap", "overlap"] < err["coulomb", "overlap"], err


def test_unknown_element_is_refused(water_dataset):
    model = DensityModel(**SMALL).fit(water_dataset, progress=False)
    with pytest.raises(ValueError, match="contains C, which the model has not seen"):
        model.predict(molecule("CH4"))


def test_references_started_from_a_model(water_dataset, tmp_path):
    """compute_references(guess_model=...) converges to the same references in fewer SCF cycles."""
    from rhocast.dataset import Dataset

    model_file = tmp_path / "guess.h5"
    DensityModel(**SMALL).fit(water_dataset, progress=False).save(model_file)
    new = _distorted_waters(3, 31)
    rhocast.compute_references(new, tmp_path / "minao.h5", **REFS, conv_tol=1e-10)
    rhocast.compute_references(new, tmp_path / "model.h5", **REFS, conv_tol=1e-10, guess_model=model_file)
    minao, started = Dataset(tmp_path / "minao.h5"), Dataset(tmp_path / "model.h5")
    for i in range(3):
        assert started.info(i)["guess"] == "model" and minao.info(i)["guess"] == "minao"
        assert abs(started.energies(i)["total"] - minao.energies(i)["total"]) < 1e-8
        np.testing.assert_allclose(started.coefficients(i), minao.coefficients(i), atol=1e-5)
    cycles = [[d.info(i)["iterations"] for i in range(3)] for d in (minao, started)]
    assert sum(cycles[1]) < sum(cycles[0]), cycles


def test_feature_selection_sample_is_bounded(water_dataset, monkeypatch):
    """The columns are chosen on at most feature_sample atoms, split evenly over the species."""
    from rhocast.descriptors import LambdaSoap
    from rhocast.model import feature_sample

    waters = _distorted_waters(30, 3)  # 30 O, 60 H
    counts = lambda subsets: [sum(int(waters[s].numbers[i] == z) for s, sub in enumerate(subsets) for i in sub)
                              for z in (8, 1)]
    assert counts(feature_sample(waters, 40, seed=0)) == [20, 20]
    assert counts(feature_sample(waters, 70, seed=0)) == [30, 40]  # O has only 30: H takes the rest
    assert counts(feature_sample(waters, 1000, seed=0)) == [30, 60]
    seen = []
    compute = LambdaSoap.compute

    def counting(self, atoms, atoms_subset=None):
        if self.selected_ is None:  # the selection's own pass: every feature column
            seen.append(sum(len(a) for a in atoms) if atoms_subset is None else sum(map(len, atoms_subset)))
        return compute(self, atoms, atoms_subset)

    monkeypatch.setattr(LambdaSoap, "compute", counting)
    DensityModel(**SMALL, n_features=20, feature_sample=12).fit(water_dataset, progress=False)
    assert seen == [12]
