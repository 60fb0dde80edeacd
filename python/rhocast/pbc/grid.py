"""Periodic cells in PySCF and fields on a cell's uniform real-space grid (atomic units).

The grid is the FFT mesh of ``pyscf.pbc`` (``cell.mesh``, set by ``ke_cutoff``): N_g points at the
fractional coordinates (i/n1, j/n2, k/n3), each of weight vol / N_g. Basis functions are summed over
the lattice (Gamma point). For smooth functions (GTH valence densities, even-tempered auxiliary
functions) integrals on this grid converge exponentially with ``ke_cutoff``.

Arrays of a density on the grid have shape (1, N_g) (LDA: rho) or (4, N_g) (GGA: rho, d/dx, d/dy, d/dz).
Everything is computed in blocks of grid points, so that memory is bounded by ``max_memory_mb`` plus
a few arrays of length N_g.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
from ase import Atoms
from ase.units import Bohr


def to_pyscf_cell(atoms: Atoms, basis, pseudo: Optional[str], ke_cutoff: float, charge: Optional[int] = None,
                  spin: Optional[int] = None, verbose: int = 0):
    """The ``pyscf.pbc`` Cell of a 3D-periodic ``atoms`` (Angstrom, converted to Bohr with ASE's constant).

    ``ke_cutoff`` (Hartree) fixes the FFT mesh; ``pseudo`` is a PySCF pseudopotential name (e.g. gth-pbe)
    or None for all electrons.
    """
    from pyscf.pbc import gto

    from rhocast.structures import charge_and_spin, describe

    if not atoms.pbc.all():
        raise ValueError(f"{describe(atoms)} is not periodic in 3D (pbc={atoms.pbc.tolist()})")
    c0, s0 = charge_and_spin(atoms)
    return gto.Cell(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions / Bohr)],
                    a=atoms.cell.array / Bohr, unit="Bohr", basis=basis, pseudo=pseudo, ke_cutoff=ke_cutoff,
                    charge=c0 if charge is None else charge, spin=s0 if spin is None else spin,
                    verbose=verbose).build()


def uniform_grid(cell) -> tuple[np.ndarray, float]:
    """Points (N_g, 3) of the cell's FFT mesh and the weight of each (vol / N_g), Bohr."""
    coords = cell.gen_uniform_grids(cell.mesh)
    return coords, cell.vol / len(coords)


def _blocks(n_points: int, n_functions: int, n_components: int, max_memory_mb: float) -> Iterator[slice]:
    size = max(256, int(max_memory_mb * 1e6 / (8 * max(n_functions, 1) * n_components)))
    for start in range(0, n_points, size):
        yield slice(start, min(start + size, n_points))


def eval_functions(cell, coords: np.ndarray, deriv: int = 0) -> np.ndarray:
    """Lattice-summed basis functions of ``cell`` at ``coords``: (1 + 3 deriv, n_points, nao), PySCF order."""
    from pyscf.pbc.dft import numint

    ao = numint.eval_ao(cell, coords, deriv=deriv)
    return ao[None] if deriv == 0 else ao


def density_from_dm(cell, dm: np.ndarray, coords: np.ndarray, deriv: int = 0,
                    max_memory_mb: float = 500.0) -> np.ndarray:
    """rho (and its gradient if ``deriv``) of a total density matrix (nao, nao) at ``coords``: (1 + 3 deriv, N)."""
    n = 1 + 3 * deriv
    out = np.empty((n, len(coords)))
    for s in _blocks(len(coords), cell.nao, n + 1, max_memory_mb):
        ao = eval_functions(cell, coords[s], deriv)
        c0 = ao[0] @ dm
        out[0, s] = np.einsum("gi,gi->g", c0, ao[0])
        for x in range(1, n):
            out[x, s] = 2 * np.einsum("gi,gi->g", c0, ao[x])
    return out


def density_from_coefficients(atoms: Atoms, basis, coefficients: np.ndarray, mesh, deriv: int = 0,
                              tol: float = 1e-12) -> np.ndarray:
    """sum_P c_P phi_P (lattice-summed; and its gradient if ``deriv``) on the uniform grid of ``mesh``:
    (1 + 3 deriv, N_g); ``coefficients`` in canonical order of ``basis`` (an AuxiliaryBasis) on ``atoms``.

    Collocation in the compiled core: each shell touches only the grid points within its screening
    radius (functions below ``tol`` are dropped), so the cost grows linearly with the cell.
    """
    from rhocast import _core

    return _core.collocate_density(basis.to_core(), [int(z) for z in atoms.numbers], atoms.positions / Bohr,
                                   atoms.cell.array / Bohr, [int(n) for n in mesh], coefficients, deriv, tol)


def project(atoms: Atoms, basis, values: np.ndarray, mesh, weight: float, tol: float = 1e-12) -> np.ndarray:
    """w_P = integral over the cell of phi_P f, for f = ``values`` (N_g,) on the uniform grid of ``mesh``
    with point weight ``weight``; with values of shape (4, N_g) the gradient terms f_x d_x phi_P are
    added (the matrix of a GGA potential). Canonical order of ``basis`` on ``atoms``.
    """
    from rhocast import _core

    values = np.atleast_2d(values)
    return weight * _core.integrate_functions(basis.to_core(), [int(z) for z in atoms.numbers],
                                              atoms.positions / Bohr, atoms.cell.array / Bohr,
                                              [int(n) for n in mesh], values, tol)


def potential_matrix(cell, wv: np.ndarray, coords: np.ndarray, max_memory_mb: float = 500.0) -> np.ndarray:
    """V_{mu nu} = sum_g [wv_0 chi_mu chi_nu + wv_x d_x(chi_mu chi_nu)] for wv (1 or 4, N) = weights x potential."""
    from rhocast.kohn_sham import potential_matrix_block

    v = np.zeros((cell.nao, cell.nao))
    deriv = 0 if len(wv) == 1 else 1
    for s in _blocks(len(coords), cell.nao, 2 + 3 * deriv, max_memory_mb):
        v += potential_matrix_block(eval_functions(cell, coords[s], deriv), wv[:, s])
    return v


def hartree(cell, rho: np.ndarray) -> tuple[float, np.ndarray]:
    """Hartree energy and potential v_H on the grid of a density rho (N_g,) given on ``cell.mesh``.

    Solved by FFT, v_H(G) = 4 pi rho(G) / G^2, with the G = 0 term omitted: a uniform neutralising
    background, the convention of PySCF's FFTDF (the matching G = 0 terms sit in its pseudopotential
    and Ewald energies, so totals agree with ``pyscf.pbc``).
    """
    from pyscf.pbc import tools

    coul_g = tools.get_coulG(cell, mesh=cell.mesh)
    v = tools.ifft(coul_g * tools.fft(rho, cell.mesh), cell.mesh).real
    return 0.5 * float(rho @ v) * cell.vol / rho.size, v
