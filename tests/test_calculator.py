"""The ASE calculator: the dipole and charges of the predicted density, electron count corrected."""
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.units import Bohr

from rhocast.calculator import DensityCalculator
from rhocast.model import DensityModel
from rhocast.properties import dipole_moment

MODEL = Path(__file__).parent / "data" / "model_v1.h5"  # 6 distorted waters, STO-3G references


def test_dipole_and_charges_of_the_prediction():
    model = DensityModel.load(MODEL)
    calls = []
    predict = model.predict
    model.predict = lambda a: calls.append(1) or predict(a)
    atoms = molecule("H2O")
    atoms.calc = DensityCalculator(model)
    mu = atoms.get_dipole_moment()
    np.testing.assert_allclose(mu, dipole_moment(atoms, predict(atoms), model.auxbasis_, renormalize=True) * Bohr,
                               atol=1e-12)
    q = atoms.get_charges()
    assert abs(q.sum()) < 1e-10  # neutral (the split between atoms is the basis partition, not a chemical one)
    assert abs(q[1] - q[2]) < 1e-6  # the two H of the symmetric molecule alike
    atoms.get_dipole_moment()
    assert len(calls) == 1  # cached for one geometry
    moved = atoms.copy()
    moved.translate([3.0, -2.0, 1.0])  # the corrected density's dipole does not depend on the origin
    moved.calc = DensityCalculator(model)
    np.testing.assert_allclose(moved.get_dipole_moment(), mu, atol=1e-8)
    atoms.positions[1, 0] += 0.05
    atoms.get_dipole_moment()
    assert len(calls) == 3  # a new geometry predicts again (the moved copy was the second)


def test_cells_and_bad_charges_are_refused():
    model = DensityModel.load(MODEL)
    atoms = molecule("H2O")
    atoms.info["charge"] = True  # what ASE makes of a bare word "charge" in an extxyz comment
    atoms.calc = DensityCalculator(model)
    with pytest.raises(ValueError, match="must be an integer"):
        atoms.get_dipole_moment()
    cell = molecule("H2O", vacuum=3.0, pbc=True)
    cell.calc = DensityCalculator(model)
    with pytest.raises(ValueError, match="molecules"):
        cell.get_dipole_moment()


def test_dipole_derivatives_property():
    """The calculator's atomic polar tensors are those of rhocast.gradients, computed once per geometry."""
    from rhocast.gradients import dipole_derivatives

    model = DensityModel.load(MODEL)
    atoms = molecule("H2O")
    atoms.calc = DensityCalculator(model)
    apt = atoms.calc.get_property("dipole_derivatives", atoms)
    np.testing.assert_allclose(apt, dipole_derivatives(model, atoms), rtol=0, atol=1e-14)
    assert apt.shape == (3, 3, 3)
    # displacing an H along x changes the dipole (e Angstrom) by the tensor times the step (Angstrom)
    moved = []
    for step in (1e-4, -1e-4):
        m = atoms.copy()
        m.positions[1, 0] += step
        m.calc = DensityCalculator(model)
        moved.append(m.get_dipole_moment())
    np.testing.assert_allclose((moved[0] - moved[1]) / 2e-4, apt[1, :, 0], rtol=1e-6, atol=1e-8)
