"""Refactors of the integral setup leave the numbers unchanged: the reference fit, the Kohn-Sham step
(Harris-Foulkes, input and output-density energies) and the SCF guess of a water molecule, the NH2 radical
(UKS) and a water cell against tests/data/integral_context_before.npz, written by the code before the
shared integral context (``python tests/test_integral_context.py`` rewrites it: only on purpose).

Inputs are deterministic: the density is the fit of PySCF's minao (molecules) or default (cell) initial
guess, so no SCF runs. Energies must agree to 1e-8 Hartree. The open shell is NH2, not OH: the singly
occupied pi orbital of OH is one of a degenerate pair, and which one the diagonaliser returns changes
with the last bit of the Fock matrix (the beta density matrix then differs by 0.17 and E_xc by 4e-8 Ha,
the grid's lack of rotational invariance).
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

DATA = Path(__file__).parent / "data" / "integral_context_before.npz"
KS = dict(basis="def2-svp", auxbasis="def2-universal-jkfit", xc="pbe", grid_level=3)
CELL = 1.5 * np.array([[4.2, 0.0, 0.0], [0.4, 4.0, 0.0], [0.3, -0.2, 4.1]])  # as tests/test_pbc.py
CELL_KS = dict(basis="gth-szv", auxbasis="etb:gth-szv", xc="pbe", pseudo="gth-pbe", ke_cutoff=150.0)


def _step_values(prefix: str, step) -> dict:
    out = {f"{prefix}/harris_foulkes": step.harris_foulkes, f"{prefix}/band": step.band_energy,
           f"{prefix}/mo_energy": step.mo_energy, f"{prefix}/dm": step.dm}
    out.update({f"{prefix}/input_{k}": v for k, v in step.input_energies.items()})
    out.update({f"{prefix}/output_{k}": v for k, v in step.output_energies.items()})
    return out


def _molecule_values(name: str, atoms: Atoms) -> dict:
    from pyscf import dft

    from rhocast.basis import AuxiliaryBasis
    from rhocast.density_fitting import fit_density
    from rhocast.kohn_sham import kohn_sham_step
    from rhocast.scf_guess import guess_from_density
    from rhocast.structures import to_pyscf_mol

    mol = to_pyscf_mol(atoms, KS["basis"])
    mf = dft.RKS(mol) if mol.spin == 0 else dft.UKS(mol)
    mf.xc, mf.grids.level = KS["xc"], KS["grid_level"]
    dm = mf.get_init_guess(key="minao")
    dm_total = dm if dm.ndim == 2 else dm[0] + dm[1]
    auxmol = AuxiliaryBasis(KS["auxbasis"], set(atoms.numbers)).make_auxmol(mol)
    c = fit_density(mol, auxmol, dm_total, "coulomb")
    c_constrained = fit_density(mol, auxmol, dm_total, "coulomb", n_electrons=mol.nelectron)
    out = {f"{name}/fit": c, f"{name}/fit_constrained": c_constrained,
           f"{name}/fit_overlap": fit_density(mol, auxmol, dm_total, "overlap")}
    out.update(_step_values(f"{name}/step", kohn_sham_step(atoms, c, **KS)))
    guess = guess_from_density(mf, c, KS["auxbasis"])
    out[f"{name}/guess_dm"] = guess
    out[f"{name}/guess_energy"] = mf.energy_tot(guess)
    return out


def water_cell() -> Atoms:
    a = Atoms("OH2", positions=[[0, 0, 0.1173], [0, 0.7572, -0.4692], [0, -0.7572, -0.4692]], cell=CELL, pbc=True)
    a.positions += 1.0
    return a


def _cell_values() -> dict:
    from pyscf.pbc import dft as pbc_dft

    from rhocast.basis import AuxiliaryBasis
    from rhocast.kohn_sham import kohn_sham_step
    from rhocast.pbc.grid import density_from_dm, to_pyscf_cell
    from rhocast.pbc.references import fit_density

    atoms = water_cell()
    cell = to_pyscf_cell(atoms, CELL_KS["basis"], CELL_KS["pseudo"], CELL_KS["ke_cutoff"])
    dm = pbc_dft.RKS(cell).get_init_guess()
    rho = density_from_dm(cell, dm)[0]
    c = fit_density(atoms, cell, AuxiliaryBasis(CELL_KS["auxbasis"], set(atoms.numbers)), rho)
    return {"cell/fit": c, **_step_values("cell/step", kohn_sham_step(atoms, c, **CELL_KS))}


def all_values() -> dict:
    nh2 = molecule("NH2")
    nh2.info["spin"] = 1
    return {**_molecule_values("water", molecule("H2O")), **_molecule_values("nh2", nh2), **_cell_values()}


@pytest.fixture(scope="module")
def values():
    return all_values()


def test_numbers_are_those_before_the_integral_context(values):
    before = np.load(DATA)
    assert sorted(before.files) == sorted(values)
    for key in before.files:
        # density matrices and coefficients to 1e-7 (their energies agree to second order); energies and
        # orbital energies to 1e-8 Hartree
        tol = 1e-7 if key.endswith(("dm", "fit", "fit_constrained", "fit_overlap")) else 1e-8
        np.testing.assert_allclose(values[key], before[key], rtol=0, atol=tol, err_msg=key)


def test_three_centre_integrals_are_computed_once_per_structure():
    """The step's J, its fitted output Hartree energy and the Newton step of the SCF guess share one
    (mu nu|P) build (counted at PySCF's aux_e2, through which every three-centre batch goes)."""
    from unittest import mock

    from pyscf import dft
    from pyscf.df import incore

    from rhocast.basis import AuxiliaryBasis
    from rhocast.density_fitting import fit_density
    from rhocast.kohn_sham import kohn_sham_step
    from rhocast.scf_guess import guess_from_density
    from rhocast.structures import to_pyscf_mol

    atoms = molecule("H2O")
    mol = to_pyscf_mol(atoms, KS["basis"])
    auxmol = AuxiliaryBasis(KS["auxbasis"], {1, 8}).make_auxmol(mol)
    c = fit_density(mol, auxmol, dft.RKS(mol).get_init_guess(key="minao"))
    with mock.patch.object(incore, "aux_e2", wraps=incore.aux_e2) as builds:
        kohn_sham_step(atoms, c, **{**KS, "grid_level": 1}, fitted_hartree=True)
        assert builds.call_count == 1
        mf = dft.RKS(mol)
        mf.xc, mf.grids.level = KS["xc"], 1
        guess_from_density(mf, c, KS["auxbasis"])
        assert builds.call_count == 2


@pytest.mark.parametrize("level", [0, 3])
def test_grids_are_those_of_pyscf_build(level):
    """The context's grids (one integer key per box instead of PySCF's row sort) have exactly the
    points, weights, order and screening mask of PySCF's own ``Grids.build(with_non0tab=True)``, on a
    molecule with atoms far outside the box grid's bounds in every direction and an alignment padding."""
    from pyscf import dft

    from rhocast.integrals import build_grids
    from rhocast.structures import to_pyscf_mol

    atoms = molecule("CH3CH2OH")
    atoms.positions[:, 1] *= 3.0  # elongated: several boxes along each axis
    mol = to_pyscf_mol(atoms, "def2-svp")
    ours, theirs = dft.gen_grid.Grids(mol), dft.gen_grid.Grids(mol)
    ours.level = theirs.level = level
    build_grids(ours)
    theirs.build(with_non0tab=True)
    assert ours.weights.size % dft.gen_grid.ALIGNMENT_UNIT == 0
    for name in ("coords", "weights", "atm_idx", "quadrature_weights", "non0tab"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)


if __name__ == "__main__":
    np.savez(DATA, **all_values())
    print(f"wrote {DATA}", file=sys.stderr)
