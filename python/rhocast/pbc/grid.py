"""Periodic cells in PySCF and fields on a cell's uniform real-space grid (atomic units).

The grid is the FFT mesh of ``pyscf.pbc`` (``cell.mesh``, set by ``ke_cutoff``): N_g points at the
fractional coordinates (i/n1, j/n2, k/n3), each of weight vol / N_g. Basis functions are summed over
the lattice (Gamma point). For smooth functions (GTH valence densities, even-tempered auxiliary
functions) integrals on this grid converge exponentially with ``ke_cutoff``.

Arrays of a density on the grid have shape (1, N_g) (LDA: rho) or (4, N_g) (GGA: rho, d/dx, d/dy, d/dz).
Nothing holds more than a few arrays of length N_g (per thread) at once: auxiliary functions are
collocated by the compiled core, orbital pairs by PySCF's multigrid (the private ``_eval_rhoG`` and
``_get_j_pass2`` of pyscf.pbc.dft.multigrid.multigrid_pair, PySCF 2.14).
"""
from __future__ import annotations

from typing import Optional

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


def eval_functions(cell, coords: np.ndarray, deriv: int = 0) -> np.ndarray:
    """Lattice-summed basis functions of ``cell`` at ``coords`` by pyscf.pbc: (1 + 3 deriv, n_points, nao),
    PySCF order. A dense reference for tests; the production paths collocate instead."""
    from pyscf.pbc.dft import numint

    ao = numint.eval_ao(cell, coords, deriv=deriv)
    return ao[None] if deriv == 0 else ao


def _multigrid(cell):
    from pyscf.pbc.dft.multigrid import MultiGridNumInt2

    return MultiGridNumInt2(cell)


def density_from_dm(cell, dm: np.ndarray, deriv: int = 0) -> np.ndarray:
    """rho (and its gradient if ``deriv``) of a total density matrix (nao, nao) on the cell's mesh:
    (1 + 3 deriv, N_g).

    By PySCF's multigrid collocation of orbital pairs, as its multigrid SCF computes the density, the
    gradient from the density's plane-wave expansion. (Dense evaluation of every orbital on the mesh
    is 20 times slower on an 8-water cell and grows quadratically with the cell.)
    """
    from pyscf.pbc import tools
    from pyscf.pbc.dft.multigrid.multigrid_pair import _eval_rhoG

    n = int(np.prod(cell.mesh))
    rho_g = _eval_rhoG(_multigrid(cell), np.asarray(dm)[None], hermi=1, kpts=np.zeros((1, 3)), deriv=deriv)
    return tools.ifft(rho_g.reshape(-1, n), cell.mesh).real * (n / cell.vol)


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


def potential_matrix(cell, wv: np.ndarray) -> np.ndarray:
    """V_{mu nu} = sum_g [wv_0 chi_mu chi_nu + wv_x d_x(chi_mu chi_nu)] for ``wv`` (1 or 4, N_g), the
    quadrature weight times the potential (and the GGA vector term) on the cell's mesh.

    As PySCF's multigrid SCF does: the vector term becomes -div by FFT, then the orbital pairs are
    integrated against the potential on multigrid levels.
    """
    from pyscf.pbc import tools
    from pyscf.pbc.dft.multigrid.multigrid_pair import _get_j_pass2

    wv_g = tools.fft(np.atleast_2d(wv), cell.mesh)
    v_g = wv_g[0]
    if len(wv_g) == 4:
        v_g = v_g - np.einsum("xp,px->p", 1j * wv_g[1:4], cell.get_Gv(cell.mesh))
    return np.asarray(_get_j_pass2(_multigrid(cell), v_g, kpts=np.zeros((1, 3)))).reshape(cell.nao, cell.nao)


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
