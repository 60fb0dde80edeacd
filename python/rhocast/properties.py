"""Properties of a density given by auxiliary-basis coefficients (canonical order, atomic units).

Electron count and dipole moment follow analytically from the shells' moments: only s functions
carry charge, and only p functions (besides the charges at their centres) carry a dipole.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
from ase import Atoms
from ase.units import Bohr

from rhocast.basis import AuxiliaryBasis

DEBYE = 2.541746473  # Debye per atomic unit of dipole (e Bohr)


def function_moments(basis: AuxiliaryBasis, numbers) -> tuple[np.ndarray, np.ndarray]:
    """q (n_coef,), the integral of each function, and m (3, n_coef), the integral of (r - R_atom) times
    each function (canonical order, Bohr); the one implementation of both (the reference fit takes the
    basis of its auxmol, :meth:`AuxiliaryBasis.of_auxmol`). Analytic: no PySCF."""
    q, m = [], []
    for z in numbers:
        for shell in basis.shells[int(z)]:
            a, c = shell.exponents, shell.coefficients
            n = 2 * shell.l + 1
            qs, ms = np.zeros(n), np.zeros((3, n))
            if shell.l == 0:
                qs[0] = c @ (np.pi / a) ** 1.5 / np.sqrt(4 * np.pi)
            elif shell.l == 1:
                # phi_x = c sqrt(3/4pi) x e^{-a r^2}; int x^2 e^{-a r^2} = (pi/a)^{3/2} / (2a)
                val = np.sqrt(3 / (4 * np.pi)) * c @ ((np.pi / a) ** 1.5 / (2 * a))
                ms[1, 0] = ms[2, 1] = ms[0, 2] = val  # canonical m = -1, 0, +1 are y, z, x
            q.append(qs)
            m.append(ms)
    return np.concatenate(q), np.concatenate(m, axis=1)


def electron_count(coefficients: np.ndarray, basis: AuxiliaryBasis, numbers) -> float:
    """Integral of the density."""
    return float(function_moments(basis, numbers)[0] @ coefficients)


def with_electron_count(coefficients: np.ndarray, basis: AuxiliaryBasis, atoms: Atoms,
                        n_electrons: float, solve_overlap: Optional[Callable] = None) -> np.ndarray:
    """The density closest to ``coefficients`` in the L2 norm that integrates to ``n_electrons``.

    c + S^-1 q (N - q.c) / (q.S^-1 q), with S the (lattice-summed for cells) block-sparse overlap and
    q the integrals of the functions; ``solve_overlap(v)`` = S^-1 v if a factorisation is at hand.
    Unlike scaling the s functions, this leaves a density whose count is nearly right nearly unchanged.
    """
    if solve_overlap is None:
        from rhocast.overlap import overlap_solver

        solve_overlap = overlap_solver(atoms, basis)
    q, _ = function_moments(basis, atoms.numbers)
    return constrain_count(np.asarray(coefficients, dtype=float), q, solve_overlap, n_electrons)


def constrain_count(coefficients: np.ndarray, q: np.ndarray, solve: Callable, n_electrons: float) -> np.ndarray:
    """The density closest to ``coefficients`` in a metric M that integrates to ``n_electrons``:
    c + M^-1 q (N - q.c) / (q.M^-1 q), with q the integrals of the functions and ``solve(v)`` = M^-1 v."""
    mq = solve(q)
    return coefficients + mq * (n_electrons - q @ coefficients) / (q @ mq)


def dipole_moment(atoms: Atoms, coefficients: np.ndarray, basis: AuxiliaryBasis,
                  renormalize: bool = False, nuclear_charges: Optional[np.ndarray] = None) -> np.ndarray:
    """Dipole moment (e Bohr) of nuclei plus the (negative) electron density, about the origin.

    ``nuclear_charges`` (n_atoms,), e: the charges the density neutralises, Z minus the core electrons of
    an ECP (:func:`rhocast.ecp.nuclear_charges`, ``DensityModel.nuclear_charges``); default Z (all-electron).
    With ``renormalize`` the density is first corrected to the exact electron count (sum of those
    charges - atoms.info['charge']) by :func:`with_electron_count`, which makes the result independent
    of the origin.
    """
    numbers = atoms.numbers
    charges = numbers.astype(float) if nuclear_charges is None else np.asarray(nuclear_charges, dtype=float)
    if charges.shape != (len(atoms),):
        raise ValueError(f"nuclear_charges must have shape ({len(atoms)},), not {charges.shape}")
    c = np.asarray(coefficients, dtype=float)
    if renormalize:
        c = with_electron_count(c, basis, atoms, float(charges.sum() - atoms.info.get("charge", 0)))
    q, m = function_moments(basis, numbers)
    centres = np.repeat(atoms.positions / Bohr, np.diff(basis.offsets(numbers)), axis=0)
    electronic = (centres.T * q) @ c + m @ c
    return charges @ (atoms.positions / Bohr) - electronic


def density_on_grid(atoms: Atoms, coefficients: np.ndarray, basis: AuxiliaryBasis, points: np.ndarray,
                    block: int = 20000) -> np.ndarray:
    """rho at ``points`` (n, 3) in Angstrom, in electrons per Bohr^3; evaluated in blocks of points."""
    from pyscf.dft import numint

    from rhocast.basis import from_canonical
    from rhocast.structures import carrier_molecule

    auxmol = basis.make_auxmol(carrier_molecule(atoms))
    c = from_canonical(auxmol, np.asarray(coefficients))
    pts = np.asarray(points, dtype=float) / Bohr
    return np.concatenate([numint.eval_ao(auxmol, pts[k:k + block]) @ c for k in range(0, len(pts), block)]) \
        if len(pts) else np.zeros(0)


def write_cube(path: Union[str, Path], atoms: Atoms, coefficients: np.ndarray, basis: AuxiliaryBasis,
               resolution: Optional[float] = 0.2, margin: float = 3.0) -> Path:
    """Gaussian cube file of the density (PySCF's cube writer); resolution and margin in Angstrom."""
    from pyscf.tools import cubegen

    from rhocast.structures import carrier_molecule

    mol = carrier_molecule(atoms)
    cube = cubegen.Cube(mol, resolution=resolution / Bohr, margin=margin / Bohr)
    rho = density_on_grid(atoms, coefficients, basis, cube.get_coords() * Bohr)
    cube.write(rho.reshape(cube.nx, cube.ny, cube.nz), str(path), comment="rhocast density (e/Bohr^3)")
    return Path(path)
