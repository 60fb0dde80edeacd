"""Which structures get references: farthest-point selection over whole structures.

A reference costs an SCF; a structure costs nothing until it is computed. Choosing the training structures
spread out in feature space, instead of at random, covers the rare chemistry of a pool (the tail that a
random draw of a few hundred molecules misses) with the same number of SCFs.

The fingerprint of a structure is, for each species, the mean of its atoms' normalised lambda = 0
lambda-SOAP features (zeros where the species is absent), concatenated over species, each block weighted
by the species' share of the atoms. Two molecules are close when the same elements sit in similar
environments in similar proportions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from rhocast.descriptors import LambdaSoap, farthest_point_sampling


def structure_fingerprints(structures: Sequence[Atoms], species: Sequence[int], cutoff: float = 4.0,
                           max_radial: int = 6, max_angular: int = 4) -> np.ndarray:
    """Fingerprints, shape (n_structures, n_species * n_features(lambda = 0)); lengths in Angstrom.

    ``species`` must contain every element of ``structures``; the descriptor sizes are those of the model
    that will be trained (lambda = 0 only: the invariant part).
    """
    species = sorted({int(z) for z in species})
    soap = LambdaSoap(species, cutoff=cutoff, max_radial=max_radial, max_angular=max_angular, max_lambda=0)
    width = soap.n_features(0)
    out = np.zeros((len(structures), len(species) * width))
    for k, atoms in enumerate(structures):
        f0 = soap.compute(atoms)[0][:, 0, :]  # (n_atoms, n_features), normalised per atom
        for s, z in enumerate(species):
            rows = atoms.numbers == z
            if rows.any():
                out[k, s * width:(s + 1) * width] = f0[rows].mean(axis=0) * rows.mean()
    return out


def farthest_structures(structures: Sequence[Atoms], n: int, species: Sequence[int], **descriptor) -> np.ndarray:
    """Indices of ``n`` of ``structures`` by farthest-point sampling of :func:`structure_fingerprints`.

    Greedy, so the first ``k`` of the result are the selection of size ``k`` (a learning curve's training
    sets nest). Deterministic: it starts from the structure of largest fingerprint norm.
    """
    if not 0 < n <= len(structures):
        raise ValueError(f"cannot select n={n} structures from {len(structures)}")
    return farthest_point_sampling(structure_fingerprints(structures, species, **descriptor), n)
