"""The compiled predictor (rhocast._core.DensityPredictor behind DensityModel.predict) against the numpy
predictor it replaced, symmetry, determinism and its projected kernels."""
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.units import Bohr

from rhocast.kernels import kernel
from rhocast.model import DensityModel
from equivariance import random_rotation, wigner_d_real
from threads import serial_and_parallel

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def model():
    return DensityModel.load(DATA / "model_v1.h5")


def _reference(name):
    d = np.load(DATA / "model_v1_predictions.npz")
    atoms = Atoms(numbers=d[f"{name}_numbers"], positions=d[f"{name}_positions"], cell=d[f"{name}_cell"],
                  pbc=d[f"{name}_pbc"])
    return atoms, d[f"{name}_coefficients"]


@pytest.mark.parametrize("name", ["dimer", "cell"])
def test_equals_the_numpy_predictor(model, name):
    """Predictions written by the numpy predictor (tests/data/make_model_v1.py, commit ea6d823)."""
    atoms, ref = _reference(name)
    np.testing.assert_allclose(model.predict(atoms), ref, rtol=0, atol=1e-12)


def test_rotation_and_permutation(model):
    atoms, _ = _reference("dimer")
    c = model.predict(atoms)
    basis = model.auxbasis_
    off = basis.offsets(atoms.numbers)
    rot = random_rotation(11)
    turned = atoms.copy()
    turned.positions = (atoms.positions - 1.3) @ rot.T
    ct = model.predict(turned)
    for a, z in enumerate(atoms.numbers):
        pos = off[a]
        for shell in basis.shells[z]:
            n = 2 * shell.l + 1
            np.testing.assert_allclose(ct[pos:pos + n], wigner_d_real(shell.l, rot) @ c[pos:pos + n], atol=1e-10)
            pos += n
    order = np.array([3, 4, 5, 0, 1, 2])
    cp = model.predict(atoms[order])
    np.testing.assert_allclose(cp, np.concatenate([c[off[a]:off[a + 1]] for a in order]), atol=1e-12)


def test_deterministic_across_threads(model):
    atoms, _ = _reference("cell")
    big = atoms.repeat(2)
    serial, parallel = serial_and_parallel(lambda: model.predict(big))
    assert np.array_equal(serial, parallel)
    # the repeated cell gives the same atoms (the neighbours' summation order differs)
    np.testing.assert_allclose(serial[:model.auxbasis_.offsets(atoms.numbers)[-1]], model.predict(atoms),
                               rtol=0, atol=1e-13)


def test_projected_kernels(model):
    """Psi from the core equals K_iM V from rhocast.kernels on the descriptor's features, and
    baseline + Psi w is the prediction."""
    atoms, _ = _reference("dimer")
    shells, psi = model._structure_maps(atoms)
    feats = model.descriptor_.compute(atoms)
    c = model._baseline_vector(atoms).copy()
    for coef_start, l, w_start, k in shells:
        a = np.searchsorted(model.auxbasis_.offsets(atoms.numbers), coef_start, side="right") - 1
        z = int(atoms.numbers[a])
        k_im = kernel({lam: f[[a]] for lam, f in feats.items()}, model.sparse_features_[z], l, model.zeta)
        expected = k_im.reshape(2 * l + 1, -1) @ model.projectors_[(z, l)]
        np.testing.assert_allclose(psi[k], expected, rtol=0, atol=1e-12 * np.abs(expected).max())
        c[coef_start:coef_start + 2 * l + 1] += psi[k] @ model.weights_[w_start:w_start + psi[k].shape[1]]
    np.testing.assert_allclose(c, model.predict(atoms), rtol=0, atol=1e-10)


def test_charges_and_dipole_match_properties(model):
    from rhocast.properties import dipole_moment, function_moments

    atoms, c = _reference("dimer")
    core = model._core_predictor()
    numbers = [int(z) for z in atoms.numbers]
    np.testing.assert_allclose(core.dipole(numbers, atoms.positions / Bohr, c),
                               dipole_moment(atoms, c, model.auxbasis_), atol=1e-12)
    q, _ = function_moments(model.auxbasis_, atoms.numbers)
    off = model.auxbasis_.offsets(atoms.numbers)
    np.testing.assert_allclose(core.atomic_charges(numbers, c),
                               atoms.numbers - np.add.reduceat(q * c, off[:-1]), atol=1e-12)


def test_bad_inputs(model):
    atoms, _ = _reference("cell")
    mixed = atoms.copy()
    mixed.pbc = [True, True, False]
    with pytest.raises(ValueError, match="pbc must be all true"):
        model.predict(mixed)
    core = model._core_predictor()
    with pytest.raises(ValueError, match="atomic number 6 is not among"):
        core.predict([6], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="weights"):
        core.set_weights(np.zeros(3))
