"""Properties from coefficients against PySCF: electron count, dipole, density on a grid, cube files."""
import numpy as np
import pytest
from ase.build import molecule
from ase.units import Bohr

from rhocast.basis import AuxiliaryBasis
from rhocast.properties import DEBYE, density_on_grid, dipole_moment, electron_count, write_cube
from rhocast.references import ReferenceSettings, reference_record, run_scf


@pytest.fixture(scope="module")
def fitted():
    settings = ReferenceSettings(basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=3).resolved()
    a = molecule("H2O")
    a.positions += [0.3, -0.2, 0.5]
    mf, _ = run_scf(a, settings)
    return a, reference_record(a, settings), mf, AuxiliaryBasis("def2-universal-jkfit", a.numbers)


def test_electron_count(fitted):
    a, ref, _, basis = fitted
    assert abs(electron_count(ref["coefficients"], basis, a.numbers) - ref["floor"]["n_electrons_fit"]) < 1e-10
    assert abs(electron_count(ref["coefficients"], basis, a.numbers) - 10) < 1e-3


def test_dipole_matches_scf_and_is_origin_independent(fitted):
    a, ref, mf, basis = fitted
    scf = mf.dip_moment(unit="AU", verbose=0)
    mu = dipole_moment(a, ref["coefficients"], basis, renormalize=True)
    assert np.abs(mu - scf).max() < 5e-3  # e Bohr; measured ~1e-3 for a Coulomb fit
    moved = a.copy()
    moved.positions += [5.0, -3.0, 2.0]
    np.testing.assert_allclose(dipole_moment(moved, ref["coefficients"], basis, renormalize=True), mu, atol=1e-10)
    assert abs(np.linalg.norm(mu) * DEBYE - np.linalg.norm(scf) * DEBYE) < 0.02


def test_density_on_grid_and_cube(fitted, tmp_path):
    a, ref, mf, basis = fitted
    from pyscf.dft import numint

    pts = a.positions[0] + np.random.default_rng(0).normal(scale=0.8, size=(200, 3))
    rho = density_on_grid(a, ref["coefficients"], basis, pts)
    rho_scf = numint.eval_rho(mf.mol, numint.eval_ao(mf.mol, pts / Bohr), mf.make_rdm1())
    assert np.abs(rho - rho_scf).max() < 0.05 * rho_scf.max()
    path = write_cube(tmp_path / "rho.cube", a, ref["coefficients"], basis, resolution=0.3)
    from ase.io.cube import read_cube_data

    data, atoms = read_cube_data(str(path))
    assert len(atoms) == 3 and data.max() > 1.0
