"""Properties from coefficients against PySCF: electron count, dipole, density on a grid, cube files."""
import numpy as np
import pytest
from ase.build import molecule
from ase.units import Bohr

from rhocast.basis import AuxiliaryBasis
from rhocast.properties import DEBYE, density_on_grid, dipole_moment, electron_count, function_moments, write_cube
from rhocast.references import ReferenceSettings, reference_record, run_scf


@pytest.fixture(scope="module")
def fitted():
    settings = ReferenceSettings(basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=3).resolved()
    a = molecule("H2O")
    a.positions += [0.3, -0.2, 0.5]
    mf, _ = run_scf(a, settings)
    return a, reference_record(a, settings), mf, AuxiliaryBasis("def2-universal-jkfit", a.numbers)


@pytest.mark.parametrize("spec", ["def2-universal-jkfit", "cc-pvdz-jkfit", "etb:def2-svp"])
def test_function_moments_match_pyscf_integrals(spec):
    """q_P = int phi_P and m_P = int (r - R_P) phi_P against PySCF's int1e_ovlp and int1e_r with a very
    wide unit Gaussian g = exp(-eps r^2) at the origin (int phi g -> int phi as eps -> 0; the error,
    eps <r^2>, is below 1e-9 here), for the basis built from the spec and the one read from an auxmol."""
    from pyscf import gto

    from rhocast.basis import atomic_numbers, to_canonical

    a = molecule("H2O")
    a.positions += [0.3, -0.2, 0.5]
    basis = AuxiliaryBasis(spec, a.numbers)
    auxmol = basis.make_auxmol(gto.M(atom=[(s, p) for s, p in zip(a.get_chemical_symbols(), a.positions)],
                                     basis="sto-3g"))
    eps = 1e-11
    unit = gto.M(atom="X 0 0 0", basis={"X": [[0, [eps, 1.0]]]})
    g0 = unit.eval_gto("GTOval", np.zeros((1, 3)))[0, 0]  # the unit function is g0 exp(-eps r^2)
    auxmol.set_common_orig((0, 0, 0))
    q_pyscf = to_canonical(auxmol, gto.intor_cross("int1e_ovlp", auxmol, unit)[:, 0] / g0)
    r_pyscf = to_canonical(auxmol, gto.intor_cross("int1e_r", auxmol, unit)[:, :, 0] / g0, axis=1)
    centres = np.repeat(a.positions / Bohr, np.diff(basis.offsets(a.numbers)), axis=0)
    m_pyscf = r_pyscf - centres.T * q_pyscf
    for b in (basis, AuxiliaryBasis.of_auxmol(auxmol)):
        q, m = function_moments(b, atomic_numbers(auxmol))
        np.testing.assert_allclose(q, q_pyscf, rtol=0, atol=1e-8 * np.abs(q_pyscf).max())
        np.testing.assert_allclose(m, m_pyscf, rtol=0, atol=1e-8 * np.abs(m_pyscf).max())
    assert np.abs(q).max() > 1 and np.abs(m).max() > 0.1  # the comparison is not between zeros


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
