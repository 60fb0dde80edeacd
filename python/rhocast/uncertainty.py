"""When not to trust a prediction: indicators computed with it (issue: the bad tail must not hide in a mean).

Two quantities available before any Kohn-Sham step, and one that the step gives for free:

- **novelty** of an atom: the part of its lambda = 0 kernel feature that the sparse environments of its
  species do not span, ``1 - Psi_i Psi_i^T / k(i, i)`` with ``Psi_i = K_iM V`` the projected kernel
  (``Psi Psi^T = K_iM K_MM^-1 K_Mi``, the Nystroem approximation). This is the prior predictive variance
  that the projected (subset-of-regressors) GPR drops, relative to the kernel's own scale: 0 for an
  environment inside the span of the training environments, 1 for one orthogonal to all of them.
- **electron-count error** of the raw prediction, ``q^T c - N`` (electrons), before the correction that
  the Kohn-Sham step applies.

- **step energy change** ``|E[rho_out] - E_HF[rho_in]|`` (Hartree): the output-density energy and the
  Harris-Foulkes energy of one Kohn-Sham step agree to second order when the input density is
  self-consistent, and their difference grows with the input's error along the soft (small-gap)
  response modes that a density norm weighs little. On QM9 test molecules from a 150-molecule model
  it was 1-3 kcal/mol where the one-step error was about 1, and 7-32 kcal/mol where the error was
  5-24 kcal/mol.

``structure_indicators`` gives the first two per structure with the most novel atom named; ``predict``
and ``energies`` print and store them, ``energies`` also the step energy change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from rhocast.kernels import kernel


def atom_novelty(model, atoms: Atoms) -> np.ndarray:
    """Novelty (dimensionless, in [0, 1]) of every atom of ``atoms`` under the fitted ``model``; shape (n_atoms,)."""
    feats = model.descriptor_.compute(atoms)
    out = np.empty(len(atoms))
    for z in set(atoms.numbers.tolist()):
        rows = np.flatnonzero(atoms.numbers == z)
        own = {0: feats[0][rows]}
        k_im = kernel(own, model.sparse_features_[z], 0, model.zeta)[:, 0, :, 0]  # (n, M)
        k_ii = np.einsum("if,if->i", own[0][:, 0], own[0][:, 0]) ** model.zeta
        psi = k_im @ model.projectors_[(z, 0)]
        out[rows] = np.clip(1.0 - np.einsum("id,id->i", psi, psi) / k_ii, 0.0, 1.0)
    return out


@dataclass(frozen=True)
class Indicators:
    """Trust indicators of one predicted structure."""

    max_novelty: float          # novelty of its most novel atom (0..1)
    most_novel_atom: int        # index of that atom
    electron_count_error: float  # q^T c - N of the raw prediction (electrons)

    def describe(self, atoms: Atoms) -> str:
        return (f"max novelty {self.max_novelty:.3f} (atom {self.most_novel_atom}, "
                f"{atoms.get_chemical_symbols()[self.most_novel_atom]}), "
                f"electron count {self.electron_count_error:+.3f} e before correction")


def structure_indicators(model, atoms: Atoms, coefficients: np.ndarray) -> Indicators:
    """Indicators of ``atoms`` whose predicted coefficients (canonical order) are ``coefficients``."""
    from rhocast.properties import electron_count
    from rhocast.structures import charge_and_spin

    novelty = atom_novelty(model, atoms)
    k = int(np.argmax(novelty))
    n_exact = float(model.nuclear_charges(atoms.numbers).sum()) - charge_and_spin(atoms)[0]  # ECP cores excluded
    return Indicators(float(novelty[k]), k, float(electron_count(coefficients, model.auxbasis_, atoms.numbers) - n_exact))


def step_energy_change(result) -> float:
    """|E[rho_out] - E_HF[rho_in]| (Hartree) of a :class:`rhocast.kohn_sham.KohnShamResult`."""
    return abs(float(result.total_energy) - float(result.harris_foulkes))
