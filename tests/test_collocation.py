"""Collocation of auxiliary functions on a cell's uniform grid (compiled core) against pyscf.pbc's
lattice-summed eval_ao, in a small triclinic cell where diffuse functions reach several images."""
import numpy as np
import pytest
from ase import Atoms
from ase.units import Bohr

from rhocast import _core
from rhocast.basis import AuxiliaryBasis, from_canonical, to_canonical
from rhocast.pbc.grid import density_from_coefficients, eval_functions, project, to_pyscf_cell, uniform_grid


@pytest.fixture(scope="module")
def system():
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],
                  cell=[[4.0, 0, 0], [1.0, 4.2, 0], [0.5, 0.7, 3.9]], pbc=True)
    atoms.positions += [0.3, 3.8, 0.2]  # atoms outside the unit cell: images must be found
    cell = to_pyscf_cell(atoms, "gth-szv", "gth-pbe", 100.0)
    basis = AuxiliaryBasis("etb:gth-szv", set(atoms.numbers))
    auxcell = basis.make_auxmol(cell)
    coords, weight = uniform_grid(cell)
    return atoms, cell, basis, auxcell, eval_functions(auxcell, coords, deriv=1), weight


def test_density_and_gradient_match_pyscf(system):
    atoms, cell, basis, auxcell, ao, _ = system
    c = np.random.default_rng(0).normal(size=auxcell.nao)
    expected = ao @ from_canonical(auxcell, c)
    got = density_from_coefficients(atoms, basis, c, cell.mesh, deriv=1)
    # pyscf.pbc screens its lattice sums at cell.precision (1e-8)
    assert np.abs(got - expected).max() < 1e-7 * np.abs(expected).max()


def test_integration_is_the_transpose(system):
    atoms, cell, basis, auxcell, ao, weight = system
    f = np.random.default_rng(1).normal(size=(4, ao.shape[1]))
    expected = weight * to_canonical(auxcell, np.einsum("xg,xgp->p", f, ao))
    got = project(atoms, basis, f, cell.mesh, weight)
    assert np.abs(got - expected).max() < 1e-7 * np.abs(expected).max()
    lda = project(atoms, basis, f[0], cell.mesh, weight)
    assert np.abs(lda - weight * to_canonical(auxcell, f[0] @ ao[0])).max() < 1e-7 * np.abs(lda).max()


def test_screening_radius_bounds_the_function():
    s = _core.Shell(2, [0.7, 0.2], [1.3, -0.4])
    y_max = np.sqrt(5 / (4 * np.pi))  # largest |Y_2m| on the sphere

    def largest(x):
        return np.abs(1.3 * np.exp(-0.7 * x**2) - 0.4 * np.exp(-0.2 * x**2)) * x**2 * y_max

    r = _core.shell_radius(s, 1e-10, 0)
    assert largest(np.linspace(r, r + 20, 400)).max() < 1e-10  # beyond the radius every function is below tol
    assert largest(0.9 * r) > 1e-11  # and the radius is not wastefully large
    assert _core.shell_radius(s, 1e-10, 1) >= r  # gradients reach further


def test_serial_equals_parallel(system):
    atoms, cell, basis, auxcell, _, _ = system
    c = np.random.default_rng(2).normal(size=auxcell.nao)
    args = (basis.to_core(), atoms.numbers.tolist(), atoms.positions / Bohr, atoms.cell.array / Bohr,
            [int(n) for n in cell.mesh], c, 1, 1e-12)
    n = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        serial = _core.collocate_density(*args)
        _core.set_num_threads(2)
        parallel = _core.collocate_density(*args)
    finally:
        _core.set_num_threads(n)
    assert np.abs(serial - parallel).max() < 1e-12 * np.abs(serial).max()


def test_functions_on_a_molecular_grid_match_pyscf():
    """Auxiliary functions and gradients on a molecular DFT grid (IntegralContext.aux_functions, per-shell
    screening) against PySCF's unscreened eval_ao, including points far outside the molecule."""
    from ase.build import molecule
    from pyscf import dft

    from rhocast.integrals import IntegralContext
    from rhocast.structures import to_pyscf_mol

    mol = to_pyscf_mol(molecule("CH3CH2OH"), "def2-svp")
    context = IntegralContext.of(mol, "def2-universal-jkfit")
    grids = context.grids(0)
    coords = np.vstack([grids.coords, [[40.0, 0.0, 0.0], [0.0, -60.0, 10.0]]])
    got = context.aux_functions(coords, deriv=1, tol=1e-13)
    expected = to_canonical(context.auxmol, dft.numint.eval_ao(context.auxmol, coords, deriv=1), axis=2)
    assert np.abs(got - expected).max() < 1e-12
    assert np.abs(got[:, -2:]).max() == 0.0  # screened out, not evaluated


def test_density_on_a_molecular_grid_is_the_sum_of_the_functions():
    """IntegralContext.aux_density (shells contracted with their coefficients, screened by |c|_1) against
    PySCF's unscreened eval_ao times the coefficients, values and gradients, with some shells' coefficients
    zero (skipped) and points far outside the molecule (no contribution)."""
    from ase.build import molecule
    from pyscf import dft

    from rhocast.integrals import IntegralContext
    from rhocast.structures import to_pyscf_mol

    mol = to_pyscf_mol(molecule("CH3CH2OH"), "def2-svp")
    context = IntegralContext.of(mol, "def2-universal-jkfit")
    coords = np.vstack([context.grids(0).coords, [[40.0, 0.0, 0.0], [0.0, -60.0, 10.0]]])
    c = np.random.default_rng(1).normal(size=context.auxmol.nao)
    c[:30] = 0.0  # the first shells of the first atom drop out
    expected = to_canonical(context.auxmol, dft.numint.eval_ao(context.auxmol, coords, deriv=1), axis=2) @ c
    got = context.aux_density(coords, c, deriv=1, tol=1e-13)
    assert got.shape == (4, len(coords))
    assert np.abs(got - expected).max() < 1e-11 * np.abs(expected).max()
    assert np.abs(got[:, -2:]).max() == 0.0
    np.testing.assert_allclose(context.aux_density(coords, c)[0], got[0], rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="coefficients must have shape"):
        context.aux_density(coords, c[:-1])
