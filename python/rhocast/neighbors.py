"""Neighbour lists (compiled core; linked cells, O(N), any periodic cell)."""
from __future__ import annotations

import numpy as np
from ase import Atoms


def neighbor_list(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs closer than ``cutoff`` (Angstrom), with ASE's conventions.

    Returns ``(i, j, S, d, D)``: atom indices, integer cell shifts (n_pairs, 3), distances and
    vectors ``D = r_j - r_i + S @ cell``. Every ordered pair is listed (both i-j and j-i), including
    several images of the same atom and an atom's own images when the cutoff exceeds the cell.
    ``atoms.pbc`` must be all True or all False.
    """
    from rhocast import _core

    if atoms.pbc.any() and not atoms.pbc.all():
        raise ValueError("neighbor_list supports molecules and 3D-periodic cells, not partial pbc")
    cell = atoms.cell.array if atoms.pbc.all() else None
    return _core.neighbor_list(np.ascontiguousarray(atoms.positions, dtype=float), cell, float(cutoff))
