"""The ASE calculator: the dipole and charges of the predicted density, electron count corrected."""
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
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


def _tip3p_dimer_steps(n_steps: int):
    """Geometries of a water dimer along ``n_steps`` velocity-Verlet steps of rigid TIP3P (300 K momenta)."""
    from ase.calculators.tip3p import TIP3P
    from ase.constraints import FixBondLengths
    from ase.io import read
    try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution, which now only calls this
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    atoms = read(Path(__file__).parent / "data" / "water_dimers_3.xyz", index=0)
    atoms.calc = TIP3P(rc=7.0)
    atoms.constraints = FixBondLengths([(3 * i + j, 3 * i + (j + 1) % 3) for i in range(2) for j in range(3)])
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn, frames = VelocityVerlet(atoms, 1.0 * fs), []
    dyn.attach(lambda: frames.append(atoms.positions.copy()), interval=1)
    dyn.run(n_steps)
    return atoms, frames


def test_dipole_along_md_steps_is_that_of_the_prediction():
    """Along three TIP3P MD steps the calculator's dipole is properties.dipole_moment of the corrected
    prediction at every step: whole (one count correction) and per molecule (the sum of the molecules'
    corrected dipoles), molecule and periodic cell alike."""
    model = DensityModel.load(MODEL)
    basis = model.auxbasis_
    atoms, frames = _tip3p_dimer_steps(3)
    halves = [[0, 1, 2], [3, 4, 5]]
    whole = atoms.copy()
    whole.calc = DensityCalculator(model)
    split = atoms.copy()
    split.calc = DensityCalculator(model, molecules=halves)
    cell = atoms.copy()
    cell.set_cell([9.0, 8.0, 8.5])
    cell.pbc = True
    cell.calc = DensityCalculator(model, periodic=True, molecules=halves)
    dipoles = []
    for positions in frames:
        for a in (whole, split, cell):
            a.positions = positions
        c = model.predict(whole)
        np.testing.assert_allclose(whole.get_dipole_moment(), dipole_moment(whole, c, basis, renormalize=True) * Bohr,
                                   atol=1e-12)
        for a in (split, cell):
            c = model.predict(a)
            offsets = basis.offsets(a.numbers)
            parts = [dipole_moment(Atoms(a.numbers[m], a.positions[m]), c[offsets[m[0]]:offsets[m[-1] + 1]], basis,
                                   renormalize=True) for m in halves]  # each molecule on its own, not periodic
            np.testing.assert_allclose(a.get_dipole_moment(), np.sum(parts, axis=0) * Bohr, atol=1e-12)
            assert abs(a.get_charges()[:3].sum()) < 1e-10  # each molecule neutral
        dipoles.append(whole.get_dipole_moment())
    assert len(frames) == 4 and np.abs(np.diff(dipoles, axis=0)).min(axis=1).max() > 1e-4  # the dipole moves


def test_molecules_must_cover_every_atom_once():
    model = DensityModel.load(MODEL)
    atoms, _ = _tip3p_dimer_steps(0)
    for molecules in ([[0, 1, 2]], [[0, 1, 2], [2, 3, 4, 5]]):
        atoms.calc = DensityCalculator(model, molecules=molecules)
        with pytest.raises(ValueError, match="every atom index 0..5 exactly once"):
            atoms.get_dipole_moment()


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
