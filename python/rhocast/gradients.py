"""Position gradients of a prediction: d c / d R of the coefficients and the atomic polar tensors d mu / d R.

Both are analytic in the compiled core (cpp/include/rhocast/predictor.hpp, coefficient_gradients, and
cpp/include/rhocast/properties.hpp, corrected_dipole_derivatives): through the lambda-SOAP features, the
kernels and the projection, and for the dipole through the electron-count correction. Atomic units: the
coefficients' gradients are per Bohr, the polar tensors in e (e Bohr per Bohr, which is also e Angstrom per
Angstrom). ``d c / d R`` is sparse in neighbours: atom i's coefficients depend only on the atoms within the
cutoff of i, and only those blocks are stored (memory linear in atoms).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms


@dataclass
class CoefficientGradients:
    """d c / d R of one structure, per Bohr, by atom blocks.

    ``neighbors[i]`` (int array) are the atoms that atom i's coefficients depend on (i first, then the atoms
    within the cutoff, images merged, ascending) and ``blocks[i]`` (n_coef(i), len(neighbors[i]), 3) with
    ``blocks[i][:, k, x] = d c_i / d R_{neighbors[i][k], x}``; ``offsets`` are the atoms' first coefficients
    (canonical order, n_atoms + 1)."""

    offsets: np.ndarray
    neighbors: list[np.ndarray]
    blocks: list[np.ndarray]

    def dense(self) -> np.ndarray:
        """All of d c / d R as one (n_coef, n_atoms, 3) array (memory quadratic in atoms: for small systems)."""
        out = np.zeros((self.offsets[-1], len(self.blocks), 3))
        for i, (atoms, block) in enumerate(zip(self.neighbors, self.blocks)):
            out[self.offsets[i]:self.offsets[i + 1], atoms] = block
        return out


def coefficient_gradients(model, atoms: Atoms) -> CoefficientGradients:
    """Analytic d c / d R of ``model.predict(atoms)`` (a fitted :class:`rhocast.DensityModel`) for a molecule
    or a 3D-periodic cell, per Bohr."""
    first, neighbors, blocks = model._core_predictor().coefficient_gradients(*model._core_structure(atoms))
    offsets = model.auxbasis_.offsets(atoms.numbers)
    return CoefficientGradients(
        offsets=np.asarray(offsets),
        neighbors=[np.asarray(neighbors[first[i]:first[i + 1]]) for i in range(len(atoms))],
        blocks=[b.reshape(b.shape[0], -1, 3) for b in blocks])


def dipole_derivatives(model, atoms: Atoms) -> np.ndarray:
    """Atomic polar tensors (n_atoms, 3, 3) in e: ``[b, x, y] = d mu_x / d R_{b, y}`` of the dipole of the
    predicted density corrected to the exact electron count (sum of ``model.nuclear_charges``, Z less ECP
    core electrons, - atoms.info['charge']; the dipole of
    :func:`rhocast.properties.dipole_moment` with ``renormalize=True``). Molecules only: the dipole of a
    periodic cell is not defined by its density alone. For a neutral molecule the tensors sum to zero."""
    from rhocast import _core

    if atoms.pbc.any():
        raise ValueError("dipole_derivatives: defined for molecules (pbc False), not for the periodic "
                         f"{atoms.get_chemical_formula()}")
    charge = atoms.info.get("charge", 0)
    numbers, positions, _, _ = model._core_structure(atoms)
    nuclear = model.nuclear_charges(numbers)
    apt = _core.corrected_dipole_derivatives(model._core_predictor(), numbers, positions,
                                             float(nuclear.sum() - charge))
    apt = apt.reshape(3, len(atoms), 3).transpose(1, 0, 2)
    # the core moves each nucleus with charge Z; an ECP's nucleus carries Z - n_core
    return apt - (np.asarray(numbers) - nuclear)[:, None, None] * np.eye(3)
