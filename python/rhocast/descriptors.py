"""lambda-SOAP equivariant descriptors (compiled core; METHOD.md section 3).

Features of order lambda transform like real spherical harmonics of degree lambda, in exactly the
convention of the auxiliary basis' angular functions, so that c(R.A) = D^lambda(R) c(A) holds for the
density coefficients and the features alike. Lengths in Angstrom.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from ase import Atoms


class LambdaSoap:
    """lambda-SOAP power spectrum per atom, for lambda = 0..max_lambda.

    Parameters
    ----------
    species : atomic numbers or symbols of every neighbour species the descriptor will see
    cutoff : neighbour cutoff (Angstrom)
    max_radial, max_angular : size of the density expansion (n < max_radial, l <= max_angular)
    max_lambda : largest order of the output (at least the largest l of the auxiliary basis)
    atomic_width : width sigma of the atomic Gaussians (Angstrom)
    cutoff_width : width of the cosine switching function before the cutoff (Angstrom)

    After :meth:`select_features`, ``selected_`` holds the kept feature columns per lambda; the
    normalisation of each (atom, lambda) block is always over *all* features, before selection.
    """

    def __init__(self, species: Sequence[Union[int, str]], cutoff: float = 4.0, max_radial: int = 8,
                 max_angular: int = 6, max_lambda: int = 5, atomic_width: float = 0.3, cutoff_width: float = 0.5):
        from ase.data import atomic_numbers

        self.species = sorted({atomic_numbers[s] if isinstance(s, str) else int(s) for s in species})
        self.cutoff, self.max_radial, self.max_angular = float(cutoff), int(max_radial), int(max_angular)
        self.max_lambda, self.atomic_width, self.cutoff_width = int(max_lambda), float(atomic_width), float(cutoff_width)
        self.selected_: Optional[dict[int, np.ndarray]] = None
        self._core = None

    @property
    def core(self):
        if self._core is None:
            from rhocast import _core

            self._core = _core.LambdaSoap(self.species, self.cutoff, self.max_radial, self.max_angular,
                                          self.max_lambda, self.atomic_width, self.cutoff_width)
        return self._core

    def n_features(self, lambda_: int) -> int:
        """Number of feature columns of order ``lambda_`` (after selection, if any)."""
        if self.selected_ is not None:
            return len(self.selected_[lambda_])
        return self.core.n_features(lambda_)

    def compute(self, atoms: Union[Atoms, Sequence[Atoms]], atoms_subset=None) -> dict[int, np.ndarray]:
        """Features {lambda: array (n_atoms, 2 lambda + 1, n_features)}.

        For a list of structures the atoms are concatenated in structure order. ``atoms_subset``:
        for one Atoms, a list of atom indices; for a list, one index list (or None) per structure.
        Only the requested centres are computed.
        """
        if isinstance(atoms, Atoms):
            return self._compute_one(atoms, atoms_subset)
        structures = list(atoms)
        subsets = atoms_subset if atoms_subset is not None else [None] * len(structures)
        if len(subsets) != len(structures):
            raise ValueError("atoms_subset needs one entry per structure")
        parts = [self._compute_one(a, s) for a, s in zip(structures, subsets)]
        return {lam: np.concatenate([p[lam] for p in parts]) for lam in range(self.max_lambda + 1)}

    def _compute_one(self, atoms: Atoms, subset) -> dict[int, np.ndarray]:
        if atoms.pbc.any() and not atoms.pbc.all():
            raise ValueError("lambda-SOAP supports molecules and 3D-periodic cells, not partial pbc")
        unknown = sorted(set(atoms.numbers.tolist()) - set(self.species))
        if unknown:
            raise ValueError(f"species {unknown} are not among the descriptor's species {self.species}")
        centers = [] if subset is None else [int(i) for i in subset]
        if subset is not None and not centers:
            return {lam: np.zeros((0, 2 * lam + 1, self.n_features(lam))) for lam in range(self.max_lambda + 1)}
        cell = atoms.cell.array if atoms.pbc.all() else None
        feats = self.core.compute([int(z) for z in atoms.numbers], np.asarray(atoms.positions, dtype=float),
                                  cell, centers)
        if self.selected_ is not None:
            feats = {lam: np.ascontiguousarray(f[:, :, self.selected_[lam]]) for lam, f in feats.items()}
        return dict(feats)

    def feature_gradients(self, atoms: Atoms, center: int) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
        """Features of atom ``center`` and their derivatives with respect to the positions (Angstrom^-1).

        Returns ``(neighbors, {lambda: (values, gradients)})``: ``neighbors`` the atoms the features depend on
        (``center`` first, then the other atoms within the cutoff, images merged, ascending), ``values``
        (2 lambda + 1, n_features) as :meth:`compute` gives them (selected columns, if any) and ``gradients``
        (len(neighbors), 3, 2 lambda + 1, n_features) with ``gradients[k, x] = d values / d R_{neighbors[k], x}``.
        Analytic (cpp/src/lambda_soap.cpp, center_feature_gradients)."""
        if atoms.pbc.any() and not atoms.pbc.all():
            raise ValueError("lambda-SOAP supports molecules and 3D-periodic cells, not partial pbc")
        selected = [] if self.selected_ is None else [[int(c) for c in self.selected_[lam]]
                                                      for lam in range(self.max_lambda + 1)]
        cell = atoms.cell.array if atoms.pbc.all() else None
        neighbors, blocks = self.core.center_feature_gradients(
            [int(z) for z in atoms.numbers], np.asarray(atoms.positions, dtype=float), cell, int(center), selected)
        out = {}
        for lam, (values, grad) in blocks.items():
            width, n_cols = values.shape
            out[lam] = (values, grad.reshape(n_cols, width, len(neighbors), 3).transpose(2, 3, 1, 0))
        return np.asarray(neighbors), out

    def select_features(self, structures: Sequence[Atoms], n_features: int,
                        atoms_subset: Optional[Sequence[Sequence[int]]] = None) -> "LambdaSoap":
        """Keep ``n_features`` columns per lambda, chosen by farthest-point sampling over the atoms of
        ``structures`` (only those of ``atoms_subset``, one index list per structure, if given).

        Deterministic: FPS starts from the column of largest norm. Features are normalised over all
        columns before the selection (METHOD.md section 9).
        """
        self.selected_ = None
        if atoms_subset is not None:
            keep = [k for k, s in enumerate(atoms_subset) if len(s)]
            structures, atoms_subset = [structures[k] for k in keep], [atoms_subset[k] for k in keep]
        feats = self.compute(list(structures), atoms_subset)
        selected = {}
        for lam, f in feats.items():
            columns = f.reshape(-1, f.shape[2]).T  # (n_features, n_atoms * (2 lambda + 1))
            selected[lam] = np.sort(farthest_point_sampling(columns, min(n_features, columns.shape[0])))
        self.selected_ = selected
        return self

    def to_dict(self) -> dict:
        d = {"species": list(self.species), "cutoff": self.cutoff, "max_radial": self.max_radial,
             "max_angular": self.max_angular, "max_lambda": self.max_lambda, "atomic_width": self.atomic_width,
             "cutoff_width": self.cutoff_width}
        if self.selected_ is not None:
            d["selected"] = {str(lam): np.asarray(v).tolist() for lam, v in self.selected_.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LambdaSoap":
        soap = cls(d["species"], d["cutoff"], d["max_radial"], d["max_angular"], d["max_lambda"],
                   d["atomic_width"], d["cutoff_width"])
        if "selected" in d:
            soap.selected_ = {int(k): np.asarray(v, dtype=int) for k, v in d["selected"].items()}
        return soap

    def __repr__(self) -> str:
        return (f"LambdaSoap(species={self.species}, cutoff={self.cutoff}, max_radial={self.max_radial}, "
                f"max_angular={self.max_angular}, max_lambda={self.max_lambda}, atomic_width={self.atomic_width})")


def farthest_point_sampling(points: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows of ``points`` picked greedily farthest from those already picked.

    Starts from the row of largest norm; ties resolve to the lowest index, so the result is
    deterministic.
    """
    points = np.asarray(points, dtype=float)
    if n > len(points):
        raise ValueError(f"cannot pick {n} of {len(points)} points")
    sq = np.einsum("ij,ij->i", points, points)
    picked = [int(np.argmax(sq))]
    dist = sq + sq[picked[0]] - 2 * points @ points[picked[0]]
    for _ in range(n - 1):
        k = int(np.argmax(dist))
        picked.append(k)
        dist = np.minimum(dist, sq + sq[k] - 2 * points @ points[k])
    return np.array(picked, dtype=int)
