"""Reference densities of periodic cells: Gamma-point DFT with ``pyscf.pbc`` and the fit on the cell's grid.

The SCF density (valence only with pseudopotentials) is evaluated on the cell's uniform grid and fitted
in the overlap metric with lattice sums: w_P = integral over the cell of phi_P rho (on the grid),
c = S^-1 w with the lattice-summed overlap S of the compiled core (optionally constrained to the exact
valence electron count). Energies are recomputed from the converged density matrix with the same grid
functions the Kohn-Sham step uses (:mod:`rhocast.pbc.kohn_sham`), so reference and step agree in their
conventions whatever SCF scheme produced the density. Atomic units.

SCF schemes (``pbc_scheme``): "multigrid" (default), "fftdf" and "gdf". On 2 cores, PBE/gth-dzvp at
ke_cutoff 200 Ha, one water in a 4 A cell: multigrid 3.5 s, FFTDF 24 s; GDF's density carries its own
fitting error (0.5 mHa per molecule at gth-szv). benchmarks/liquid_water.py measures the three on
8-water cells; multigrid is the fastest there too (see benchmarks/RESULTS.md).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from ase import Atoms

from rhocast.basis import AuxiliaryBasis
from rhocast.integrals import one_electron_energies
from rhocast.pbc.grid import density_from_coefficients, density_from_dm, project, to_pyscf_cell
from rhocast.properties import electron_count, with_electron_count
from rhocast.xc import xc_type_and_derivative

SCHEMES = ("multigrid", "fftdf", "gdf")


def make_scf(atoms: Atoms, settings):
    """The ``pyscf.pbc`` Gamma-point RKS of a cell, set up but not run (``settings``: resolved ReferenceSettings)."""
    from pyscf.pbc import dft

    from rhocast.structures import describe

    if settings.pbc_scheme not in SCHEMES:
        raise ValueError(f"pbc_scheme must be one of {SCHEMES}, not {settings.pbc_scheme!r}")
    cell = to_pyscf_cell(atoms, settings.basis, settings.pseudo, settings.ke_cutoff)
    if cell.spin != 0:
        raise ValueError(f"{describe(atoms)}: open-shell cells (spin {cell.spin}) are not supported")
    mf = dft.RKS(cell)
    mf.xc = settings.xc
    mf.conv_tol = settings.conv_tol
    mf.max_cycle = settings.max_cycle
    if settings.pbc_scheme == "gdf":
        mf = mf.density_fit()
    elif settings.pbc_scheme == "multigrid":
        mf = mf.multigrid_numint()
    return mf


def core_hamiltonian(cell) -> np.ndarray:
    """T + V_pp (V_nuc without pseudopotentials) at Gamma, (nao, nao), Hartree.

    Through PySCF's multigrid (the short-range and non-local pseudopotential analytically, the long-range
    part on the grid), as the multigrid SCF does: FFTDF's get_pp holds the Fourier transforms of all
    orbitals on the whole mesh at once (20 GB for a 32-water cell) and is 20 times slower; the two agree
    to 1e-6 Ha per matrix element on an 8-water cell.
    """
    from pyscf.pbc.dft.multigrid import MultiGridNumInt2

    ni = MultiGridNumInt2(cell)
    v = ni.get_pp(return_full=True) if cell.pseudo else ni.get_nuc()
    return np.asarray(v).reshape(cell.nao, cell.nao) + cell.pbc_intor("int1e_kin", hermi=1)


def energy_components(cell, dm: np.ndarray, xc: str, hcore: Optional[np.ndarray] = None) -> dict[str, float]:
    """Energy per cell and its components (Hartree) of a total density matrix, on the cell's grid.

    ``hcore``: :func:`core_hamiltonian` of the cell if already at hand.

    kinetic, electron_nuclear (the pseudopotential, local and non-local, or the nuclear attraction),
    hartree and xc (uniform grid, FFT Poisson with a neutralising background), nuclear_repulsion (Ewald).
    """
    from pyscf import dft as mol_dft

    from rhocast.pbc.grid import hartree

    weight = cell.vol / np.prod(cell.mesh)
    xctype, deriv = xc_type_and_derivative(xc)
    rho = density_from_dm(cell, dm, deriv=deriv)
    exc = mol_dft.numint.NumInt().eval_xc_eff(xc, rho if deriv else rho[0], deriv=0, xctype=xctype)[0]
    kinetic = cell.pbc_intor("int1e_kin", hermi=1)
    if hcore is None:
        hcore = core_hamiltonian(cell)
    e = {**one_electron_energies(cell, dm, kinetic, hcore - kinetic), "hartree": hartree(cell, rho[0])[0], "xc": float(weight * (exc @ rho[0])),
         "nuclear_repulsion": float(cell.energy_nuc())}
    e["total"] = sum(e.values())
    return e


def fit_density(atoms: Atoms, cell, basis: AuxiliaryBasis, rho: np.ndarray, n_electrons: Optional[float] = None,
                overlap_tol: float = 1e-10) -> np.ndarray:
    """Coefficients (canonical order) of the overlap-metric fit of rho (N_g,), given on ``cell``'s grid.

    c = S^-1 w with S the lattice-summed block-sparse overlap (:func:`rhocast.overlap.overlap_solver`:
    sparse LU, memory linear in the cell size, or dense Cholesky for a small dense S); with
    ``n_electrons`` the fit is constrained to integrate to exactly that many electrons.
    """
    from rhocast.overlap import overlap_solver

    w = project(atoms, basis, rho, cell.mesh, cell.vol / rho.size)
    solve = overlap_solver(atoms, basis, tol=overlap_tol)
    c = solve(w)
    if n_electrons is not None:
        c = with_electron_count(c, basis, atoms, n_electrons, solve_overlap=solve)
    return c


def fitting_floor(atoms: Atoms, cell, basis: AuxiliaryBasis, coefficients: np.ndarray,
                  rho: np.ndarray) -> dict[str, float]:
    """relative_l2 and nmae (percent) of the fitted density against rho on the cell's grid; fitted electron count."""
    weight = cell.vol / rho.size
    diff = density_from_coefficients(atoms, basis, coefficients, cell.mesh)[0] - rho
    return {"relative_l2": 100 * float(np.sqrt((diff @ diff) / (rho @ rho))),
            "nmae": 100 * float(weight * np.abs(diff).sum() / cell.nelectron),
            "n_electrons_fit": electron_count(coefficients, basis, atoms.numbers)}


def reference_fit(atoms: Atoms, mf, settings) -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """The fitted coefficients, energies per cell and fitting floor of a cell's converged Gamma-point SCF
    ``mf`` (settings resolved for cells); :func:`rhocast.references.reference_record` stores them."""
    cell = mf.cell
    dm = mf.make_rdm1()
    rho = density_from_dm(cell, dm)[0]
    basis = AuxiliaryBasis(settings.auxbasis, set(atoms.numbers))
    c = fit_density(atoms, cell, basis, rho, n_electrons=cell.nelectron if settings.constrain_electrons else None)
    energies = energy_components(cell, dm, settings.xc)
    energies["total"] = float(mf.e_tot)
    return c, energies, fitting_floor(atoms, cell, basis, c, rho)
