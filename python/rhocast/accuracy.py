"""Density errors of predicted coefficients (METHOD.md section 6), in percent.

relative L2:        100 sqrt(sum_s dc^T S dc / sum_s c^T S c)
baseline-relative:  100 sqrt(sum_s dc^T S dc / sum_s (c - cbar)^T S (c - cbar))   (as the SALTED code reports)
with S the overlap matrix of the auxiliary basis, so that dc^T S dc is the squared L2 norm of the
density error. Real-space NMAE: 100 int |rho_pred - rho_ref| / N_electrons on a DFT grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np


@dataclass
class DensityErrors:
    """Per-structure squared norms and the overall errors (percent)."""

    error_sq: list = field(default_factory=list)      # dc^T S dc
    norm_sq: list = field(default_factory=list)       # c^T S c
    variance_sq: list = field(default_factory=list)   # (c - cbar)^T S (c - cbar)
    nmae: list = field(default_factory=list)          # real-space, when computed
    floor_nmae: list = field(default_factory=list)

    @property
    def relative_l2(self) -> float:
        return 100 * float(np.sqrt(np.sum(self.error_sq) / np.sum(self.norm_sq)))

    @property
    def baseline_relative(self) -> float:
        return 100 * float(np.sqrt(np.sum(self.error_sq) / np.sum(self.variance_sq)))

    @property
    def per_structure_relative_l2(self) -> np.ndarray:
        return 100 * np.sqrt(np.asarray(self.error_sq) / np.asarray(self.norm_sq))

    def table(self) -> str:
        lines = [f"  structures           : {len(self.error_sq)}",
                 f"  relative L2 error    : {self.relative_l2:.4f} %",
                 f"  baseline-relative    : {self.baseline_relative:.4f} %"]
        if self.nmae:
            line = f"  real-space NMAE      : {np.mean(self.nmae):.4f} % against the fitted reference density"
            if self.floor_nmae:
                line += f" (fitted vs SCF density, the floor: {np.mean(self.floor_nmae):.4f} %)"
            lines.append(line)
        return "\n".join(lines)


def density_errors(model, dataset, indices: Sequence[int], grid: bool = False) -> DensityErrors:
    """Errors of ``model``'s predictions on ``dataset`` positions ``indices``.

    With ``grid`` the real-space NMAE against the *fitted* reference density is added on a DFT grid
    (the reference's grid level), next to the dataset's own floor (fit vs SCF): the error against the
    SCF density is at most their sum.
    """
    return predicted_errors(model, dataset, indices, grid)[1]


def predicted_errors(model, dataset, indices: Sequence[int], grid: bool = False,
                     structures: Optional[Sequence] = None) -> tuple[list[np.ndarray], DensityErrors]:
    """``model``'s predictions on ``dataset`` positions ``indices`` and their :func:`density_errors`
    (``structures``: those positions' atoms, when already read)."""
    if structures is None:
        structures = [dataset.atoms(int(i)) for i in indices]
    predicted = model.predict(list(structures)) if len(structures) else []
    out = coefficient_errors(structures, predicted, [dataset.coefficients(int(i)) for i in indices],
                             model.auxbasis_, [model._baseline_vector(a) for a in structures],
                             dataset.settings if grid else None)
    if grid:
        out.floor_nmae = [dataset.floor(int(i))["nmae"] for i in indices]
    return predicted, out


def merge_errors(parts: Sequence[tuple], order: Sequence[int]) -> tuple[DensityErrors, list[np.ndarray]]:
    """One :class:`DensityErrors` and the predictions in ``order`` from per-rank parts
    ``(indices, predictions, DensityErrors of those indices)`` (e.g. gathered from MPI ranks)."""
    rows = {}
    for indices, predicted, err in parts:
        for k, i in enumerate(indices):
            rows[i] = (predicted[k], err.error_sq[k], err.norm_sq[k], err.variance_sq[k],
                       err.nmae[k] if err.nmae else None, err.floor_nmae[k] if err.floor_nmae else None)
    missing = sorted(set(order) - set(rows))
    if missing:
        raise ValueError(f"no errors for structures {missing[:5]}: every index of order must be in one part")
    out = DensityErrors()
    for i in order:
        _, e, n, v, nmae, floor_nmae = rows[i]
        out.error_sq.append(e)
        out.norm_sq.append(n)
        out.variance_sq.append(v)
        if nmae is not None:
            out.nmae.append(nmae)
        if floor_nmae is not None:
            out.floor_nmae.append(floor_nmae)
    return out, [rows[i][0] for i in order]


def coefficient_errors(structures: Sequence, predicted: Sequence[np.ndarray], reference: Sequence[np.ndarray],
                       basis, baselines: Optional[Sequence[np.ndarray]] = None,
                       grid_settings: Optional[dict] = None) -> DensityErrors:
    """Errors of ``predicted`` against ``reference`` coefficients (canonical order, one array per
    structure, auxiliary basis ``basis``), for data that is not in a :class:`rhocast.Dataset`.

    ``baselines`` (per structure; default zero) gives the baseline-relative error; ``grid_settings``
    (reference settings: basis, grid_level or ke_cutoff) adds the real-space NMAE.
    """
    from rhocast.overlap import overlap_matrix

    if not (len(structures) == len(predicted) == len(reference)):
        raise ValueError(f"{len(structures)} structures, {len(predicted)} predicted and {len(reference)} reference "
                         "coefficient vectors: one of each per structure")
    out = DensityErrors()
    for k, (atoms, pred, c) in enumerate(zip(structures, predicted, reference)):
        n = basis.offsets(atoms.numbers)[-1]
        if np.shape(pred) != (n,) or np.shape(c) != (n,):
            raise ValueError(f"structure {k} ({atoms.get_chemical_formula()}): coefficient vectors of shape "
                             f"{np.shape(pred)} and {np.shape(c)}, the basis has {n} functions")
        s = overlap_matrix(atoms, basis)
        d = pred - c
        dv = c - (baselines[k] if baselines is not None else 0.0)
        out.error_sq.append(s.bilinear(d, d))
        out.norm_sq.append(s.bilinear(c, c))
        out.variance_sq.append(s.bilinear(dv, dv))
        if grid_settings is not None:
            out.nmae.append(_grid_nmae(atoms, pred, c, basis, grid_settings))
    return out


def _grid_nmae(atoms, pred, ref, basis, settings) -> float:
    from pyscf import dft

    from rhocast.basis import from_canonical
    from rhocast.structures import to_pyscf_mol

    if atoms.pbc.any():  # the cell's uniform grid, lattice-summed functions
        from rhocast.pbc.grid import density_from_coefficients, to_pyscf_cell

        cell = to_pyscf_cell(atoms, settings["basis"], settings.get("pseudo"), settings["ke_cutoff"])
        diff = density_from_coefficients(atoms, basis, pred - ref, cell.mesh)[0]
        return 100 * float(cell.vol / diff.size * np.abs(diff).sum() / cell.nelectron)
    mol = to_pyscf_mol(atoms, settings["basis"])
    auxmol = basis.make_auxmol(mol)
    grids = dft.gen_grid.Grids(mol)
    grids.level = settings.get("grid_level", 3)
    grids.build()
    d = from_canonical(auxmol, pred - ref)
    total = 0.0
    for k in range(0, grids.weights.size, 20000):
        ao = dft.numint.eval_ao(auxmol, grids.coords[k:k + 20000])
        total += grids.weights[k:k + 20000] @ np.abs(ao @ d)
    return 100 * float(total / mol.nelectron)
