"""Water systems for the benchmarks, cut from one liquid-water cell, and the model that predicts them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

CACHE = Path(__file__).with_name("cache")


def cluster(cell: Atoms, n_molecules: int) -> Atoms:
    """The n molecules nearest to the centre of a block of repeated cells (whole molecules)."""
    reps = int(np.ceil((n_molecules / (len(cell) // 3)) ** (1 / 3))) + 1
    big = cell.repeat(reps)
    pos = big.positions.reshape(-1, 3, 3)
    centre = big.cell.array.sum(axis=0) / 2
    keep = np.sort(np.argsort(np.linalg.norm(pos[:, 0] - centre, axis=1))[:n_molecules])
    return Atoms("OH2" * n_molecules, positions=pos[keep].reshape(-1, 3), info={"charge": 0, "spin": 0})


def monomer_model_and_cell(**params):
    """The scaling benchmarks' model (demo settings, ``params`` overriding them, fitted to 40 distorted water molecules, PBE/def2-SVP
    references cached in benchmarks/cache/scaling_monomers) and a 32-molecule liquid-water cell."""
    from rhocast import sources
    from rhocast.dataset import Dataset
    from rhocast.demo import MODEL, SETTINGS
    from rhocast.model import DensityModel
    from rhocast.references import compute_references

    CACHE.mkdir(exist_ok=True)
    path = CACHE / "scaling_monomers"
    compute_references(sources.distorted_waters(40, seed=0), path, progress=False, **SETTINGS)
    model = DensityModel(**{**MODEL, **params}).fit(Dataset(path), progress=False)
    return model, sources.liquid_water(1, n_molecules=32, seed=0, equilibration_ps=0.5)[0]
