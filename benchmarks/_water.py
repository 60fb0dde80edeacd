"""Water systems for the benchmarks, cut from one liquid-water cell."""
from __future__ import annotations

import numpy as np
from ase import Atoms


def cluster(cell: Atoms, n_molecules: int) -> Atoms:
    """The n molecules nearest to the centre of a block of repeated cells (whole molecules)."""
    reps = int(np.ceil((n_molecules / (len(cell) // 3)) ** (1 / 3))) + 1
    big = cell.repeat(reps)
    pos = big.positions.reshape(-1, 3, 3)
    centre = big.cell.array.sum(axis=0) / 2
    keep = np.sort(np.argsort(np.linalg.norm(pos[:, 0] - centre, axis=1))[:n_molecules])
    return Atoms("OH2" * n_molecules, positions=pos[keep].reshape(-1, 3), info={"charge": 0, "spin": 0})
