"""Position gradients of the predictor, analytic (C++ core) against central finite differences.

Finite differences: central, step H = 1e-4 in the positions' unit (Angstrom for the descriptor, Bohr for the
predictor); agreement to 1e-6 relative, element by element with a floor of 1e-6 of the largest element.
Structures: the water dimer and the periodic two-water cell of tests/data (neighbours through images) and
one water in a 3 Angstrom cube, shorter than the 3.5 Angstrom cutoff (an atom's own images are neighbours).
"""
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.units import Bohr

from rhocast.gradients import coefficient_gradients, dipole_derivatives
from rhocast.model import DensityModel
from rhocast.properties import dipole_moment

DATA = Path(__file__).parent / "data"
H = 1e-4
RTOL = 1e-6


@pytest.fixture(scope="module")
def model():
    return DensityModel.load(DATA / "model_v1.h5")


def _structure(name):
    if name == "small_cell":
        return Atoms("OH2", positions=[[0.1, 0.2, 0.0], [0.95, 0.3, 0.1], [-0.2, 1.05, 0.2]], cell=np.eye(3) * 3.0,
                     pbc=True)
    d = np.load(DATA / "model_v1_predictions.npz")
    return Atoms(numbers=d[f"{name}_numbers"], positions=d[f"{name}_positions"], cell=d[f"{name}_cell"],
                 pbc=d[f"{name}_pbc"])


def _central_difference(f, atoms, h=H):
    """d f / d R, shape (n_atoms, 3) + f's shape, by central differences in atoms.positions' unit."""
    out = []
    for a in range(len(atoms)):
        for x in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, x] += h
            minus.positions[a, x] -= h
            out.append((f(plus) - f(minus)) / (2 * h))
    return np.array(out).reshape((len(atoms), 3) + out[0].shape)


def _assert_close(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=RTOL * np.abs(numeric).max())


@pytest.mark.parametrize("name", ["dimer", "cell", "small_cell"])
def test_feature_gradients(model, name):
    """d p_i / d R of the selected, normalised lambda-SOAP columns of every centre and lambda."""
    atoms = _structure(name)
    soap = model.descriptor_
    for center in range(len(atoms)):
        neighbors, blocks = soap.feature_gradients(atoms, center)
        assert neighbors[0] == center and len(set(neighbors)) == len(neighbors)
        values = soap.compute(atoms, [center])
        for lam, (v, g) in blocks.items():
            np.testing.assert_allclose(v, values[lam][0], rtol=0, atol=1e-14)
            numeric = _central_difference(lambda a: soap.compute(a, [center])[lam][0], atoms)
            dense = np.zeros_like(numeric)
            dense[neighbors] = g
            _assert_close(dense, numeric)


def _central_difference_bohr(f, atoms, h=H):
    """d f / d R per Bohr, central differences with a step of h Bohr."""
    return _central_difference(f, atoms, h * Bohr) * Bohr


@pytest.mark.parametrize("name", ["dimer", "cell", "small_cell"])
def test_coefficient_gradients(model, name):
    """d c / d R of the whole prediction (features, kernels k = k_lambda k_0^(zeta - 1), projection)."""
    atoms = _structure(name)
    grads = coefficient_gradients(model, atoms)
    numeric = np.moveaxis(_central_difference_bohr(model.predict, atoms), 2, 0)  # (n_coef, n_atoms, 3)
    _assert_close(grads.dense(), numeric)
    # translation invariance: moving every atom together changes nothing
    np.testing.assert_allclose(grads.dense().sum(axis=1), 0.0, atol=1e-12 * np.abs(numeric).max())
    # sparse in neighbours: an atom's block covers exactly the atoms its coefficients move with
    for i, neighbors in enumerate(grads.neighbors):
        rows = numeric[grads.offsets[i]:grads.offsets[i + 1]]
        others = np.setdiff1d(np.arange(len(atoms)), neighbors)
        assert np.abs(rows[:, others]).max(initial=0.0) < 1e-12
        assert grads.blocks[i].shape == (grads.offsets[i + 1] - grads.offsets[i], len(neighbors), 3)


def _corrected_dipole(model, atoms):
    return dipole_moment(atoms, model.predict(atoms), model.auxbasis_, renormalize=True)


@pytest.mark.parametrize("name", ["monomer", "dimer"])
def test_dipole_derivatives(model, name):
    """Atomic polar tensors of the electron-count-corrected dipole against central differences of
    properties.dipole_moment(renormalize=True), and the acoustic sum rule of a neutral molecule."""
    atoms = _structure("dimer")
    if name == "monomer":
        atoms = atoms[:3]
    apt = dipole_derivatives(model, atoms)
    numeric = _central_difference_bohr(lambda a: _corrected_dipole(model, a), atoms).transpose(0, 2, 1)
    _assert_close(apt, numeric)
    np.testing.assert_allclose(apt.sum(axis=0), 0.0, atol=1e-10)


def test_dipole_derivatives_of_an_ion_and_a_cell(model):
    """A cation's tensors sum to its charge times the identity (the dipole about the origin moves with it);
    a periodic cell has no dipole derivative to give."""
    atoms = _structure("dimer")[:3]
    atoms.info["charge"] = 1
    apt = dipole_derivatives(model, atoms)
    np.testing.assert_allclose(apt.sum(axis=0), np.eye(3), atol=1e-10)
    numeric = _central_difference_bohr(lambda a: _corrected_dipole(model, a), atoms).transpose(0, 2, 1)
    _assert_close(apt, numeric)
    with pytest.raises(ValueError, match="molecules"):
        dipole_derivatives(model, _structure("cell"))


def test_bad_input_is_named(model):
    atoms = _structure("dimer")
    with pytest.raises(ValueError, match="center 6 is not an atom index 0..5"):
        model.descriptor_.feature_gradients(atoms, 6)
    slab = atoms.copy()
    slab.cell, slab.pbc = np.eye(3) * 9.0, [True, True, False]
    with pytest.raises(ValueError, match="partial pbc"):
        model.descriptor_.feature_gradients(slab, 0)
    with pytest.raises(ValueError, match="pbc must be all true"):
        coefficient_gradients(model, slab)
