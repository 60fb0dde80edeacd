"""The density model: symmetry-adapted sparse GPR in an RKHS, fitted on the non-orthogonal density loss.

METHOD.md sections 4-5. For each species Z, M_Z sparse environments are chosen by farthest-point
sampling on the lambda = 0 features of the training atoms of that species. For each (Z, lambda), K_MM is
diagonalised and the projected kernel Psi_i = K_iM V (shape (2 lambda + 1) x D) is computed once per
(atom, lambda). One weight block per (Z, lambda, n) maps Psi to the coefficients of the shell with
l = lambda and radial index n; lambda = 0 shells add the training-set mean of their coefficients.
The weights minimise (1/N) sum_s (c_s^pred - c_s)^T O_s (c_s^pred - c_s) + eta |w|^2 with O_s the
overlap (default) or Coulomb metric of the auxiliary basis (compiled core: rhocast._core.Regression).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import h5py
import numpy as np
import scipy.linalg
from ase import Atoms

from rhocast.basis import AuxiliaryBasis
from rhocast.descriptors import LambdaSoap, farthest_point_sampling
from rhocast.kernels import kernel, rkhs_projector

FORMAT = "rhocast-model"
# Version 2 is self-describing: the auxiliary-basis shells are in the file (loading needs no PySCF),
# the descriptor records its length unit; sparse features hold only the selected columns (all of them
# when n_features is None). Arrays stay float64. Measured on tests/data/model_v1.h5: sparse features and
# projectors rounded to float32 change the predictions of a water dimer and a two-water cell by
# 3e-8 of |c| (1.3e-6 of |c - baseline|), far below a model's percent-level error, so float32 would halve
# the file at no accuracy cost there; it is not adopted until checked on a large model, whose projectors
# (K_MM^-1/2 down to eigen_threshold 1e-10) amplify rounding most. Version 1 (basis by name) still loads.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
EXPORT_MAGIC = b"RHOCASTM"
EXPORT_VERSION = 1  # kModelFileVersion of cpp/include/rhocast/model_file.hpp
# The convention of the stored shells (AuxiliaryBasis.shells).
SHELL_CONVENTION = ("phi_m(r) = sum_k coefficients[k] r^l exp(-exponents[k] r^2) Y_lm(r), orthonormal real "
                    "spherical harmonics, normalisation included in the coefficients, exponents in Bohr^-2")


def loss_metric_matrix(atoms: Atoms, basis: AuxiliaryBasis, loss_metric: str, overlap_tol: float = 1e-10):
    """O_s of the loss for one structure, as a :class:`rhocast.BlockSparseMatrix` (canonical order).

    (``rhocast.density_fitting.metric_matrix`` is the dense metric of one auxmol in PySCF order.)
    """
    if loss_metric == "overlap":
        from rhocast.overlap import overlap_matrix

        return overlap_matrix(atoms, basis, tol=overlap_tol)
    if loss_metric == "coulomb":
        if atoms.pbc.any():
            raise ValueError("the Coulomb loss metric is not available for periodic cells: use loss_metric='overlap'")
        from rhocast.density_fitting import metric_matrix as dense_metric
        from rhocast.sparse import from_dense
        from rhocast.structures import carrier_molecule

        auxmol = basis.make_auxmol(carrier_molecule(atoms))
        sizes = np.diff(basis.offsets(atoms.numbers))
        return from_dense(dense_metric(auxmol, "coulomb"), sizes)
    raise ValueError(f"loss_metric must be 'overlap' or 'coulomb', not {loss_metric!r}")


# What each hyper-parameter means, with its unit: the docstring, `rhocast fit --help` and the TOML
# config keys all come from this table and the constructor's signature (defaults).
PARAMETERS = {
    "cutoff": (float, "lambda-SOAP cutoff radius (Angstrom)"),
    "max_radial": (int, "radial basis functions of lambda-SOAP"),
    "max_angular": (int, "largest angular channel of the density expansion of lambda-SOAP"),
    "atomic_width": (float, "width of the atomic Gaussians of lambda-SOAP (Angstrom)"),
    "cutoff_width": (float, "width of the smooth cutoff region (Angstrom)"),
    "n_sparse": (int, "sparse environments per species"),
    "zeta": (float, "kernel exponent (>= 1)"),
    "regularization": (float, "eta of the loss; choose it on validation data (narrow data such as one "
                              "molecule's distortions want ~1e-8, diverse chemistry such as QM9 ~1e-3)"),
    "loss_metric": (str, "metric of the coefficient error in the loss: 'overlap' (L2 norm of the density "
                         "error) or 'coulomb' (its Hartree energy)"),
    "solver": (str, "'direct' (Cholesky of the assembled Hessian), 'cg' (preconditioned conjugate "
                    "gradients) or 'auto' (the cheaper of the two by estimated cost, rhocast.solver_cost)"),
    "eigen_threshold": (float, "relative eigenvalue cut of K_MM"),
    "max_rkhs": (int, "largest RKHS dimension D per (species, lambda): the D leading eigenvectors of K_MM "
                      "after the eigenvalue cut (None: no cap). Psi memory and weights per channel scale with D"),
    "psi_precision": (str, "storage of Psi in the fit: 'float64' or 'float32' (half the memory of the fit's "
                           "largest part; products accumulate in double)"),
    "n_features": (int, "feature columns kept per lambda by farthest-point selection (None: all). Default 500: "
                        "20 distorted waters, default settings, 8 held out: baseline-relative error 0.171 % "
                        "against 0.169 % with all columns, model file 6.5 MB instead of 26.7 MB"),
    "feature_sample": (int, "atoms (split evenly over species) whose features choose the columns: the "
                            "selection's cost and memory are bounded by it, not by the training set"),
    "cg_tol": (float, "CG stops when |H w - b| < cg_tol |b|"),
    "max_iter": (int, "most CG iterations"),
    "overlap_tol": (float, "screening threshold of the overlap matrix"),
    "direct_max_weights": (int, "largest number of weights that solver='auto' may solve directly, however "
                                "cheap: a memory bound (the Hessian is 8 B n_weights^2 on rank 0; 20000: 3.2 GB)"),
    "seed": (int, "seed of the feature-selection sample"),
}


# Valid values of each hyper-parameter: (kind, lower bound, lower bound included, what is valid in words).
_CONSTRAINTS = {
    "cutoff": ("real", 0.0, False, "a radius > 0 (Angstrom)"),
    "max_radial": ("int", 1, True, "an integer >= 1"),
    "max_angular": ("int", 0, True, "an integer >= 0"),
    "atomic_width": ("real", 0.0, False, "a Gaussian width > 0 (Angstrom)"),
    "cutoff_width": ("real", 0.0, True, "a width >= 0 (Angstrom), smaller than the cutoff"),
    "zeta": ("real", 1.0, True, "a kernel exponent >= 1"),
    "regularization": ("real", 0.0, False, "a value > 0, e.g. 1e-8 .. 1e-3"),
    "eigen_threshold": ("real", 0.0, True, "a relative eigenvalue cut in [0, 1)"),
    "max_rkhs": ("int", 1, True, "None (no cap) or an integer >= 1 (RKHS dimension per species and lambda)"),
    "n_features": ("int", 1, True, "None (all columns) or an integer >= 1"),
    "feature_sample": ("int", 1, True, "an integer >= 1 (atoms)"),
    "cg_tol": ("real", 0.0, False, "a relative residual > 0"),
    "max_iter": ("int", 1, True, "an integer >= 1"),
    "overlap_tol": ("real", 0.0, False, "a value > 0"),
    "direct_max_weights": ("int", 0, True, "an integer >= 0"),
    "seed": ("int", None, True, "an integer"),
}
_CHOICES = {"loss_metric": ("overlap", "coulomb"), "solver": ("auto", "cg", "direct"),
            "psi_precision": ("float64", "float32")}


def feature_sample(structures: Sequence[Atoms], n_atoms: int, seed: int) -> list[list[int]]:
    """Atom indices per structure of a random sample of at most ``n_atoms`` atoms, split evenly over the
    species (a species with fewer atoms gives its share to the others), for the feature selection.

    All lambda-SOAP features of an atom are ~2.5 MB at the QM9 settings: the sample, not the training
    set, bounds the selection's memory and time (it was 586 s of an 847 s fit on 150 QM9 molecules
    with 50 whole structures).
    """
    rng = np.random.default_rng(seed)
    numbers = np.concatenate([a.numbers for a in structures])
    owner = np.concatenate([np.full(len(a), s) for s, a in enumerate(structures)])
    local = np.concatenate([np.arange(len(a)) for a in structures])
    species = sorted(set(numbers.tolist()), key=lambda z: np.count_nonzero(numbers == z))
    chosen, left = [], n_atoms
    for k, z in enumerate(species):  # rarest first, so unused shares pass on to the common species
        rows = np.flatnonzero(numbers == z)
        take = min(len(rows), left // (len(species) - k))
        chosen.extend(rng.choice(rows, size=take, replace=False).tolist())
        left -= take
    subsets: list[list[int]] = [[] for _ in structures]
    for r in sorted(chosen):
        subsets[owner[r]].append(int(local[r]))
    return subsets


def check_params(params: dict) -> None:
    """Raise ValueError naming the first invalid hyper-parameter of ``params`` and what would be valid.

    Nothing is coerced: a float where an integer is expected, a bool for a number or a negative zeta
    are errors (``--zeta -1`` and ``--n-sparse 0`` used to fit a 24 %-error model without complaint).
    """
    for name, value in params.items():
        if name in _CHOICES:
            if value not in _CHOICES[name]:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, _CHOICES[name]))}, not {value!r}")
        elif name == "n_sparse":
            counts = value.values() if isinstance(value, dict) else [value]
            if not counts or any(not _is_int(v) or v < 1 for v in counts):
                raise ValueError(f"n_sparse must be an integer >= 1 (or a dict element -> integer >= 1), "
                                 f"not {value!r}")
        elif name in _CONSTRAINTS:
            kind, low, closed, valid = _CONSTRAINTS[name]
            if value is None and name in ("n_features", "max_rkhs"):
                continue
            ok = _is_int(value) if kind == "int" else _is_real(value)
            if ok and low is not None:
                ok = value >= low if closed else value > low
            if ok and name == "eigen_threshold":
                ok = value < 1
            if not ok:
                raise ValueError(f"{name} must be {valid}, not {value!r}")
    if "cutoff_width" in params and "cutoff" in params and params["cutoff_width"] >= params["cutoff"]:
        raise ValueError(f"cutoff_width ({params['cutoff_width']}) must be smaller than cutoff ({params['cutoff']})")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return (_is_int(v) or isinstance(v, (float, np.floating))) and bool(np.isfinite(v))


class DensityModel:
    """Predicts density coefficients (canonical order, METHOD.md section 2) from structures.

    A scikit-learn style estimator: hyper-parameters are the constructor's arguments (see
    :data:`PARAMETERS` for their meaning and units), learned state ends in ``_``, ``get_params`` /
    ``set_params`` / ``sklearn.base.clone`` work. Run-time options (progress, CG checkpoints) are
    arguments of :meth:`fit`, not hyper-parameters.
    """

    def __init__(self, cutoff: float = 4.0, max_radial: int = 8, max_angular: int = 6, atomic_width: float = 0.3,
                 cutoff_width: float = 0.5, n_sparse: Union[int, dict] = 100, zeta: float = 2.0,
                 regularization: float = 1e-8, loss_metric: str = "overlap", solver: str = "auto",
                 eigen_threshold: float = 1e-10, max_rkhs: Optional[int] = None,
                 psi_precision: str = "float64", n_features: Optional[int] = 500, feature_sample: int = 200,
                 cg_tol: float = 1e-8,
                 max_iter: int = 2000, overlap_tol: float = 1e-10, direct_max_weights: int = 20000, seed: int = 0):
        self.cutoff, self.max_radial, self.max_angular = cutoff, max_radial, max_angular
        self.atomic_width, self.cutoff_width = atomic_width, cutoff_width
        self.n_sparse, self.zeta, self.regularization = n_sparse, zeta, regularization
        self.loss_metric, self.solver, self.eigen_threshold = loss_metric, solver, eigen_threshold
        self.max_rkhs, self.psi_precision = max_rkhs, psi_precision
        self.n_features, self.feature_sample = n_features, feature_sample
        self.cg_tol, self.max_iter = cg_tol, max_iter
        self.overlap_tol, self.direct_max_weights, self.seed = overlap_tol, direct_max_weights, seed

    @classmethod
    def _param_names(cls) -> list[str]:
        return [n for n in inspect.signature(cls.__init__).parameters if n != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """Hyper-parameters by name (``deep`` is accepted for scikit-learn; nothing here is nested)."""
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params) -> "DensityModel":
        """Set hyper-parameters by name; an unknown name is an error that lists the valid ones."""
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise ValueError(f"unknown hyper-parameters {unknown}: valid are {self._param_names()}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    # --- fitting ----------------------------------------------------------------------------------
    def fit(self, dataset, indices: Optional[Sequence[int]] = None, progress: bool = True,
            checkpoint: Optional[Union[str, Path]] = None, checkpoint_every: int = 20,
            resume: bool = False, comm=None) -> "DensityModel":
        """Fit on ``dataset`` (a :class:`rhocast.Dataset`) positions ``indices`` (default: converged ones).

        ``comm``: a :mod:`rhocast.parallel` communicator (default serial). Every rank calls ``fit`` with
        the same arguments; each builds Psi and metrics of its own shard of the training structures
        (dealt by atoms^2), the solve sums over ranks, checkpoints are written by rank 0, and every rank
        ends with the same model.

        ``checkpoint``: file for the CG state, written every ``checkpoint_every`` iterations. With
        ``resume=True`` CG restarts from the weights stored there, if they belong to this problem (a
        fingerprint of the data, the loss and the layout); otherwise a checkpoint is overwritten.
        """
        from rhocast.memory import PeakRSS
        from rhocast.parallel import SerialComm

        comm = SerialComm() if comm is None else comm
        check_params(self.get_params())
        if not _is_int(checkpoint_every) or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be an integer >= 1, not {checkpoint_every!r}")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs a checkpoint file")
        times: dict[str, float] = {}
        with PeakRSS() as peak:
            structures, shard, coefs = self._read_training_data(dataset, indices, comm, times)
            self._select_features(structures, comm, times)
            self._select_sparse_environments(structures, shard, comm, times)
            self._build_projectors(times)
            self._fit_baselines([structures[i] for i in shard], coefs, comm)
            reg = self._assemble([structures[i] for i in shard], coefs, len(structures), comm, progress, times)
            self._solve(reg, progress, checkpoint, checkpoint_every, resume, times, comm)
        self.fit_report_ = {"n_train": len(structures), "n_weights": int(self.n_weights_), "solver": self.solver_used_,
                            "cg_iterations": int(self.cg_iterations_), "times_s": times,
                            "regression_memory_mb": reg.memory_bytes / 1e6, "peak_memory_mb": peak.mb,
                            "training_loss": self.training_loss_, "solver_costs": self.solver_costs_}
        self.fit_report_["ranks"] = comm.allgather(self._rank_memory_report(reg, len(shard), peak.mb))
        return self

    def _rank_memory_report(self, reg, n_structures: int, peak_mb: float) -> dict:
        """This rank's structures and sizes (MB) of the fit's parts: Psi and metrics (the Regression
        shard; metrics include the targets and shell maps), the CG preconditioner (0 for the direct
        solver), the feature sample's features (0 without feature selection), and the peak RSS."""
        return {"n_structures": n_structures, "psi_and_metrics_mb": reg.memory_bytes / 1e6,
                "psi_mb": reg.psi_memory_bytes / 1e6, "metrics_mb": (reg.memory_bytes - reg.psi_memory_bytes) / 1e6,
                "preconditioner_mb": getattr(self, "_preconditioner_bytes", 0) / 1e6,
                "feature_sample_mb": self._feature_sample_bytes / 1e6, "peak_memory_mb": peak_mb}

    def _read_training_data(self, dataset, indices, comm, times: dict
                            ) -> tuple[list[Atoms], list[int], list[np.ndarray]]:
        """All training structures (atoms only), this rank's shard (positions in them, dealt by
        atoms^2) and the shard's coefficients."""
        from rhocast.parallel import my_structures

        t = time.perf_counter()
        idx = np.asarray(dataset.indices() if indices is None else indices, dtype=int)
        if len(idx) == 0:
            raise ValueError("no training structures")
        structures = [dataset.atoms(int(i)) for i in idx]
        shard = my_structures(structures, comm)
        coefs = [dataset.coefficients(int(idx[i])) for i in shard]
        self.reference_settings_ = dict(dataset.settings)
        self.species_ = sorted({int(z) for a in structures for z in a.numbers})
        self.auxbasis_ = AuxiliaryBasis(dataset.settings["auxbasis"], self.species_)
        for a, c in zip([structures[i] for i in shard], coefs):
            if c.size != self.auxbasis_.offsets(a.numbers)[-1]:
                raise ValueError("dataset coefficients do not match its auxiliary basis")
        # Which structures trained the model, by content (no file paths: a model outlives its folder).
        self.train_indices_ = idx
        self.train_hashes_ = [str(dataset.info(int(i))["hash"]) for i in idx]
        self.dataset_name_ = Path(dataset.path).name
        times["reading data"] = time.perf_counter() - t
        return structures, shard, coefs

    def _select_features(self, structures: Sequence[Atoms], comm, times: dict) -> None:
        """Feature columns chosen on rank 0 from the bounded sample and broadcast: the sample's features
        are computed once, not on every rank."""
        t = time.perf_counter()
        self.descriptor_ = LambdaSoap(self.species_, self.cutoff, self.max_radial, self.max_angular,
                                      self.auxbasis_.max_l, self.atomic_width, self.cutoff_width)
        self._feature_sample_bytes = 0
        if self.n_features is not None:
            if comm.rank == 0:
                subsets = feature_sample(structures, self.feature_sample, self.seed)
                # All features of the sample's atoms (held during the selection): 8 B x atoms x sum (2l+1) D_l.
                per_atom = sum((2 * lam + 1) * self.descriptor_.core.n_features(lam)
                               for lam in range(self.descriptor_.max_lambda + 1))
                self._feature_sample_bytes = 8 * per_atom * sum(len(s) for s in subsets)
                self.descriptor_.select_features(structures, self.n_features, subsets)
            self.descriptor_.selected_ = comm.bcast(self.descriptor_.selected_)
        times["feature selection"] = time.perf_counter() - t

    def _select_sparse_environments(self, structures: Sequence[Atoms], shard: Sequence[int], comm,
                                    times: dict) -> None:
        """FPS per species on the lambda = 0 features of the training atoms (each rank computes its
        shard's, all ranks gather them in structure order and run the same FPS); the chosen
        environments' full features are computed once, each rank a deal of them, and gathered."""
        from rhocast.parallel import deal

        t = time.perf_counter()
        scalar = LambdaSoap.from_dict({**self.descriptor_.to_dict(), "max_lambda": 0})
        if self.descriptor_.selected_ is not None:
            scalar.selected_ = {0: self.descriptor_.selected_[0]}
        mine = {s: f for s, f in zip(shard, np.split(scalar.compute([structures[s] for s in shard])[0][:, 0],
                                                     np.cumsum([len(structures[s]) for s in shard])[:-1]))}
        gathered = {s: f for part in comm.allgather(mine) for s, f in part.items()}
        f0 = np.concatenate([gathered[s] for s in range(len(structures))])
        numbers = np.concatenate([a.numbers for a in structures])
        owner = np.concatenate([[s] * len(a) for s, a in enumerate(structures)])
        local = np.concatenate([np.arange(len(a)) for a in structures])
        self.sparse_features_ = {}
        for z in self.species_:
            rows = np.flatnonzero(numbers == z)
            chosen = rows[farthest_point_sampling(f0[rows], self._n_sparse_for(z, len(rows)))]
            subsets = [[] for _ in structures]
            for r in chosen:
                subsets[owner[r]].append(int(local[r]))
            # Each rank computes the environments of its deal of the structures; gathered in structure order.
            used = [s for s in range(len(structures)) if subsets[s]]
            own = [used[k] for k in deal([len(subsets[s]) for s in used], comm.size)[comm.rank]]
            part = self.descriptor_.compute([structures[s] for s in own], [subsets[s] for s in own]) if own else {}
            cuts = np.cumsum([len(subsets[s]) for s in own])[:-1]
            parts: dict[int, dict] = {}
            for lam, f in part.items():
                for s, piece in zip(own, np.split(f, cuts)):
                    parts.setdefault(s, {})[lam] = piece
            by_structure = {s: f for p in comm.allgather(parts) for s, f in p.items()}
            self.sparse_features_[z] = _used_features(self, z, {
                lam: np.concatenate([by_structure[s][lam] for s in used]) for lam in range(self.descriptor_.max_lambda + 1)})
        times["sparse selection"] = time.perf_counter() - t

    def _build_projectors(self, times: dict) -> None:
        t = time.perf_counter()
        self.projectors_ = {}
        for z in self.species_:
            for lam in range(self.auxbasis_.max_l + 1):
                if self._has_channel(z, lam):
                    k = kernel(self.sparse_features_[z], self.sparse_features_[z], lam, self.zeta)
                    n = k.shape[0] * k.shape[1]
                    self.projectors_[(z, lam)] = rkhs_projector(k.reshape(n, n), self.eigen_threshold,
                                                                  self.max_rkhs)
        self._build_layout()
        times["kernels and projectors"] = time.perf_counter() - t

    def _fit_baselines(self, structures: Sequence[Atoms], coefs: Sequence[np.ndarray], comm) -> None:
        """Mean lambda = 0 coefficients per species over the *training* set only (sums and counts of
        this rank's shard, reduced over ranks)."""
        self.baselines_ = {}
        self._core_ = None  # the compiled predictor is rebuilt from the new arrays, without the old weights
        self.__dict__.pop("weights_", None)
        for z in self.species_:
            blocks = [c[off[a]:off[a + 1]] for at, c in zip(structures, coefs)
                      for off in [self.auxbasis_.offsets(at.numbers)] for a in np.flatnonzero(at.numbers == z)]
            size = self.auxbasis_.offsets([z])[-1]
            total = comm.allreduce_sum(np.sum(blocks, axis=0) if blocks else np.zeros(size))
            count = comm.allreduce_sum(len(blocks))
            self.baselines_[z] = total / count * self._scalar_mask(z)

    def _assemble(self, structures, coefs, n_total: int, comm, progress: bool, times: dict):
        """The loss as a :class:`rhocast.sharded_regression.ShardedRegression`: Psi and O_s of this
        rank's ``structures`` (of ``n_total`` over all ranks) in a rhocast._core.Regression."""
        from rhocast import _core
        from rhocast.progress import progress_bar
        from rhocast.sharded_regression import ShardedRegression

        t_psi = t_metric = metric_values = 0.0
        reg = _core.Regression(self.n_weights_, self.regularization, self.psi_precision)
        for a, c in progress_bar(list(zip(structures, coefs)), desc="kernels + metrics", unit="structure",
                                 show=progress and comm.rank == 0):
            t = time.perf_counter()
            shells, psi = self._structure_maps(a)
            t_psi += time.perf_counter() - t
            t = time.perf_counter()
            o = loss_metric_matrix(a, self.auxbasis_, self.loss_metric, self.overlap_tol)
            t_metric += time.perf_counter() - t
            metric_values += o.memory_bytes / 8
            reg.add_structure(o, c - self._baseline_vector(a), shells, psi)
        times["projected kernels (Psi)"] = t_psi
        times[f"{self.loss_metric} metrics"] = t_metric
        self._solver_counts = self._operation_counts(structures, metric_values, comm)
        return ShardedRegression(reg, comm, n_total)

    def _operation_counts(self, structures: Sequence[Atoms], metric_values: float, comm) -> dict:
        """The sizes :mod:`rhocast.solver_cost` prices, summed over ranks: Psi entries applied per
        product (sum over shells of (2 l + 1) D), those times the structure's coefficients, the metrics'
        stored values and the flops of the block-Jacobi blocks."""
        per_atom, jacobi_per_atom = {}, {}
        for z in self.species_:
            channels = self.auxbasis_.radial_channels(z)
            dims = {lam: self.projectors_[(z, lam)].shape[1] for lam in {l for l, _ in channels}}
            per_atom[z] = sum((2 * l + 1) * dims[l] for l, _ in channels)
            jacobi_per_atom[z] = sum(2 * (2 * lam + 1) * d ** 2 * sum(1 for l, _ in channels if l == lam) ** 2
                                     for lam, d in dims.items())
        q = [sum(per_atom[int(z)] for z in a.numbers) for a in structures]
        n_coef = [self.auxbasis_.offsets(a.numbers)[-1] for a in structures]
        mine = np.array([sum(q), float(np.dot(q, n_coef)), metric_values,
                         sum(jacobi_per_atom[int(z)] for a in structures for z in a.numbers)], dtype=float)
        total = comm.allreduce_sum(mine)
        return dict(zip(("psi_values", "psi_coefficients", "metric_values", "jacobi_flops"), total))

    def _solve(self, reg, progress: bool, checkpoint, checkpoint_every: int, resume: bool, times: dict,
               comm) -> None:
        t = time.perf_counter()
        solver, self.solver_costs_ = self.solver, None
        if solver == "auto":
            from rhocast.solver_cost import cheaper_solver

            solver, self.solver_costs_ = cheaper_solver(
                self._solver_counts, self.n_weights_, self._preconditioner_blocks()[1], self.regularization,
                self.max_iter, self.direct_max_weights)
        self.loss_history_ = []
        if solver == "direct":
            self.weights_ = reg.solve_direct()
            self.cg_iterations_ = 0
            self._preconditioner_bytes = 0
        else:
            cg = _Checkpoint(checkpoint, checkpoint_every, self._fingerprint(reg)) if checkpoint else None
            self.weights_ = self._conjugate_gradients(reg, progress and comm.rank == 0, cg, resume, comm)
        times[f"solve ({solver})"] = time.perf_counter() - t
        self._core_predictor().set_weights(self.weights_)
        self.solver_used_ = solver
        self.training_loss_ = float(reg.loss(self.weights_))

    def _fingerprint(self, reg) -> str:
        """SHA-256 of what defines the CG problem: the right-hand side (data, baselines, features,
        loss metric), the Hessian applied to a fixed vector (metrics, kernels, regularisation) and the
        weight layout. Two problems that share only their size differ here."""
        probe = np.random.default_rng(12345).standard_normal(self.n_weights_)
        h = hashlib.sha256()
        for part in (reg.rhs(), reg.hessian_product(probe)):
            h.update(np.round(part, 10).tobytes())  # rounding: the same problem built twice may differ in the last bits
        h.update(json.dumps(sorted((list(k), list(v)) for k, v in self.layout_.items())).encode())
        return h.hexdigest()

    def _n_sparse_for(self, z: int, available: int) -> int:
        from ase.data import chemical_symbols

        n = self.n_sparse
        if isinstance(n, dict):
            n = n.get(z, n.get(chemical_symbols[z], max(n.values())))
        return int(min(n, available))

    def _has_channel(self, z: int, lam: int) -> bool:
        return any(l == lam for l, _ in self.auxbasis_.radial_channels(z))

    def _scalar_mask(self, z: int) -> np.ndarray:
        return np.concatenate([np.full(2 * l + 1, float(l == 0)) for l, _ in self.auxbasis_.radial_channels(z)])

    def _build_layout(self) -> None:
        """Weight blocks (Z, lambda, n) -> (start, size), in species, lambda, n order."""
        self.layout_ = {}
        start = 0
        for z in self.species_:
            channels = self.auxbasis_.radial_channels(z)
            for lam in sorted({l for l, _ in channels}):
                size = self.projectors_[(z, lam)].shape[1]
                for n in sorted(n for l, n in channels if l == lam):
                    self.layout_[(z, lam, n)] = (start, size)
                    start += size
        self.n_weights_ = start

    def _core_predictor(self):
        """The compiled predictor (``rhocast._core.DensityPredictor``) of this model's arrays, built once.

        Positions cross into the core in Bohr; the descriptor settings stay in Angstrom (the unit lambda-SOAP is
        defined in: its radial basis is not scale covariant, cpp/include/rhocast/predictor.hpp). Without weights (during the fit) it gives projected kernels only.
        """
        if getattr(self, "_core_", None) is None:
            from rhocast import _core

            d = self.descriptor_
            lambdas = range(d.max_lambda + 1)
            selected = [[] if d.selected_ is None else [int(c) for c in d.selected_[lam]] for lam in lambdas]
            species = []
            for z in self.species_:
                feats = self.sparse_features_[z]
                species.append(_core.SpeciesModel(
                    z, [_core.Shell(s.l, list(s.exponents), list(s.coefficients)) for s in self.auxbasis_.shells[z]],
                    self.baselines_[z], [feats[lam].reshape(-1, feats[lam].shape[2]) for lam in lambdas],
                    [self.projectors_.get((z, lam), np.zeros((0, 0))) for lam in lambdas]))
            self._core_ = _core.DensityPredictor(d.species, d.cutoff, d.max_radial, d.max_angular, d.max_lambda,
                                                 d.atomic_width, d.cutoff_width, selected, self.zeta,
                                                 species, getattr(self, "weights_", None))
        return self._core_

    @staticmethod
    def _core_structure(atoms: Atoms) -> tuple:
        """(numbers, positions, cell, pbc) of ``atoms`` as the core takes them (Bohr)."""
        from ase.units import Bohr

        cell = atoms.cell.array / Bohr if atoms.pbc.any() else None
        return [int(z) for z in atoms.numbers], atoms.positions / Bohr, cell, [bool(p) for p in atoms.pbc]

    def _structure_maps(self, atoms: Atoms):
        """(shells, psi) of ``atoms`` for ``Regression.add_structure``: the core's projected kernels."""
        return self._core_predictor().projected_kernels(*self._core_structure(atoms))

    def _baseline_vector(self, atoms: Atoms) -> np.ndarray:
        return np.concatenate([self.baselines_[int(z)] for z in atoms.numbers])

    def _conjugate_gradients(self, reg, progress: bool, checkpoint: Optional["_Checkpoint"],
                             resume: bool, comm) -> np.ndarray:
        """Block-Jacobi preconditioned CG on H w = b; with ``resume``, restarted from a checkpoint's weights
        (the residual b - H w is recomputed, never read from the file)."""
        from rhocast.progress import progress_bar

        starts, sizes = self._preconditioner_blocks()
        blocks = reg.jacobi_blocks(starts, sizes)
        self._preconditioner_bytes = sum(b.nbytes for b in blocks)
        # Factored in place (LAPACK takes the core's Fortran-ordered blocks without a copy; a C-ordered
        # one is passed as its transpose, the same symmetric matrix): the preconditioner is held once.
        factors = [scipy.linalg.cho_factor(b if b.flags.f_contiguous else b.T, overwrite_a=True) for b in blocks]

        def precondition(r):
            z = np.empty_like(r)
            for (s, n), f in zip(zip(starts, sizes), factors):
                z[s:s + n] = scipy.linalg.cho_solve(f, r[s:s + n])
            return z

        b = reg.rhs()
        b_norm = np.linalg.norm(b)
        loss0 = reg.loss(np.zeros_like(b))
        w, it = comm.bcast(checkpoint.load() if resume and comm.rank == 0 else None) or (np.zeros_like(b), 0)
        r = b - reg.hessian_product(w) if it else b.copy()
        z = precondition(r)
        p = z.copy()
        rz = r @ z
        bar = progress_bar(total=self.max_iter, initial=it, desc="CG", show=progress)
        while it < self.max_iter and np.linalg.norm(r) > self.cg_tol * b_norm:
            hp = reg.hessian_product(p)
            alpha = rz / (p @ hp)
            w += alpha * p
            r -= alpha * hp
            z = precondition(r)
            rz_new = r @ z
            p = z + (rz_new / rz) * p
            rz = rz_new
            it += 1
            # L(w) = L(0) - (w.b + w.r) / 2 for the quadratic loss: no extra pass over the data.
            self.loss_history_.append(float(loss0 - 0.5 * (w @ b + w @ r)))
            bar.update()
            bar.set_postfix(rel_residual=f"{np.linalg.norm(r) / b_norm:.2e}", refresh=False)
            if checkpoint and comm.rank == 0 and it % checkpoint.every == 0:
                checkpoint.save(w, it)
        bar.close()
        self.cg_iterations_ = it
        if np.linalg.norm(r) > self.cg_tol * b_norm:
            import warnings

            warnings.warn(f"CG stopped after {it} iterations at relative residual "
                          f"{np.linalg.norm(r) / b_norm:.2e} (> {self.cg_tol})")
        return w

    def _preconditioner_blocks(self, max_size: int = 4000) -> tuple[list[int], list[int]]:
        """Weight ranges of the block-Jacobi preconditioner: the radial channels of one (species, lambda)
        together, up to ``max_size`` weights per block. Channels of one atom and lambda overlap strongly
        (neighbouring exponents): coupling them cut the preconditioned condition number 26-fold against one
        block per channel (30 QM9 molecules, def2-universal-jkfit)."""
        starts, sizes = [], []
        group = None
        for (z, lam, _), (start, size) in sorted(self.layout_.items(), key=lambda item: item[1][0]):
            if group == (z, lam) and sizes[-1] + size <= max_size:
                sizes[-1] += size
            else:
                starts.append(start)
                sizes.append(size)
            group = (z, lam)
        return starts, sizes

    # --- prediction -------------------------------------------------------------------------------
    def predict(self, atoms: Union[Atoms, Sequence[Atoms]]) -> Union[np.ndarray, list[np.ndarray]]:
        """Coefficients (canonical order) of one structure, or a list of them for a list."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("the model is not fitted: call fit() or DensityModel.load()")
        if not isinstance(atoms, Atoms):
            return [self.predict(a) for a in atoms]
        unknown = sorted(set(atoms.numbers.tolist()) - set(self.species_))
        if unknown:
            from ase.data import chemical_symbols

            raise ValueError(f"{atoms.get_chemical_formula()} contains {', '.join(chemical_symbols[z] for z in unknown)}, "
                             f"which the model has not seen (it predicts "
                             f"{', '.join(chemical_symbols[z] for z in self.species_)})")
        return self._core_predictor().predict(*self._core_structure(atoms))

    def nuclear_charges(self, numbers) -> np.ndarray:
        """The charges (e) that the predicted density neutralises, per atom (n_atoms,): Z minus the core
        electrons of the ECP of the references' orbital basis, or the ionic charges of the cells' GTH
        pseudopotential (:func:`rhocast.ecp.nuclear_charges`; Z for all-electron references)."""
        from rhocast.ecp import nuclear_charges

        settings = self.reference_settings_
        if settings.get("pseudo"):
            return nuclear_charges(numbers, pseudo=settings["pseudo"])
        return nuclear_charges(numbers, settings.get("basis"))

    def for_prediction(self, float32_features: bool = True) -> "DensityModel":
        """A copy that predicts the same densities from much smaller arrays: what a shipped model holds.

        For every (species, lambda > 0) the projector V ((M (2 lambda + 1)) x D) and the weight blocks w_n
        (D each, one per radial channel n) are replaced by the thin projector V [w_1 ... w_n] (one column
        per channel) and unit weight blocks, so Psi w = K V w is unchanged while D shrinks to the number of
        channels: the RKHS basis turned to the span of the fitted weights. lambda = 0 keeps V (the novelty
        indicator projects on it). Sparse features of lambdas without shells are dropped, and with
        ``float32_features`` the rest are stored as float32 (the kernels are computed in float64 from them). Measured on a 150-molecule QM9 model (M = 300,
        500 features): the copy's predictions differ by 5e-14 of |c - baseline| (float64 features) and 5e-7
        (float32), and the file shrinks from 313 to 80 and 41 MB. ``fit`` starts afresh as for any model,
        but a CG checkpoint of the original problem does not resume it (other weights).
        """
        import copy

        if not hasattr(self, "weights_"):
            raise RuntimeError("the model is not fitted: call fit() or DensityModel.load()")
        out = copy.deepcopy(self)
        weights = []
        for z in self.species_:
            channels = self.auxbasis_.radial_channels(z)
            for lam in sorted({l for l, _ in channels}):
                shells = sorted(n for l, n in channels if l == lam)
                blocks = [self.weights_[slice(*_span(self.layout_[(z, lam, n)]))] for n in shells]
                if lam == 0:
                    weights += blocks
                    continue
                out.projectors_[(z, lam)] = self.projectors_[(z, lam)] @ np.stack(blocks, axis=1)
                weights += list(np.eye(len(shells)))
            dtype = np.float32 if float32_features else np.float64
            out.sparse_features_[z] = {lam: f.astype(dtype) for lam, f in _used_features(self, z, self.sparse_features_[z]).items()}
        out.weights_ = np.concatenate(weights)
        out._build_layout()
        out._core_ = None
        out.fit_report_ = {**self.fit_report_, "for_prediction": {"float32_features": float32_features,
                                                                 "n_weights_fitted": int(self.n_weights_)}}
        return out

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: Union[str, Path]) -> None:
        """One HDF5 file with everything needed to predict, written atomically."""
        from rhocast.atomic import atomic_write

        with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["hyperparameters"] = json.dumps(self.get_params())
            f.attrs["auxbasis"] = self.auxbasis_.to_json()
            shells = f.create_group("auxbasis")
            shells.attrs["convention"] = SHELL_CONVENTION
            for z, zs in self.auxbasis_.shells.items():
                g = shells.create_group(str(z))
                g["l"] = np.array([sh.l for sh in zs], dtype=np.int64)
                g["n_primitives"] = np.array([len(sh.exponents) for sh in zs], dtype=np.int64)
                g["exponents"] = np.concatenate([sh.exponents for sh in zs])
                g["coefficients"] = np.concatenate([sh.coefficients for sh in zs])
            f.attrs["descriptor"] = json.dumps({**self.descriptor_.to_dict(), "length_unit": "Angstrom"})
            f.attrs["reference_settings"] = json.dumps(self.reference_settings_)
            f.attrs["fit_report"] = json.dumps(self.fit_report_)
            f.attrs["species"] = self.species_
            f["weights"] = self.weights_
            f["loss_history"] = np.asarray(self.loss_history_)
            f["train_indices"] = self.train_indices_
            f.attrs["dataset_name"] = self.dataset_name_
            f.attrs["train_hashes"] = json.dumps(self.train_hashes_)
            for z in self.species_:
                g = f.create_group(f"species/{z}")
                g["baseline"] = self.baselines_[z]
                for lam, feats in self.sparse_features_[z].items():
                    g[f"sparse_features/{lam}"] = feats
                for (zz, lam), v in self.projectors_.items():
                    if zz == z:
                        g[f"projectors/{lam}"] = v

    @classmethod
    def load(cls, path: Union[str, Path]) -> "DensityModel":
        from rhocast.hdf5 import open_checked

        with open_checked(Path(path), FORMAT, READABLE_VERSIONS, "model") as f:
            model = cls(**_current_names(json.loads(f.attrs["hyperparameters"])))
            if "auxbasis" in f:  # version 2: the shells themselves
                spec = json.loads(f.attrs["auxbasis"])["spec"]
                model.auxbasis_ = AuxiliaryBasis.from_shells(spec, {int(z): _read_shells(g) for z, g in f["auxbasis"].items()})
            else:  # version 1: PySCF expands the basis name
                model.auxbasis_ = AuxiliaryBasis.from_json(f.attrs["auxbasis"])
            descriptor = json.loads(f.attrs["descriptor"])
            if descriptor.pop("length_unit", "Angstrom") != "Angstrom":
                raise ValueError(f"{path}: descriptor lengths must be in Angstrom")
            model.descriptor_ = LambdaSoap.from_dict(descriptor)
            model.reference_settings_ = json.loads(f.attrs["reference_settings"])
            model.fit_report_ = json.loads(f.attrs["fit_report"])
            model.species_ = [int(z) for z in f.attrs["species"]]
            model.weights_ = f["weights"][()]
            model.loss_history_ = list(f["loss_history"][()])
            model.train_indices_ = f["train_indices"][()]
            # Files written before the training structures were named by content carry a path instead.
            model.dataset_name_ = Path(str(f.attrs.get("dataset_name", f.attrs.get("dataset_path", "")))).name
            model.train_hashes_ = json.loads(f.attrs.get("train_hashes", "[]"))
            model.baselines_, model.sparse_features_, model.projectors_ = {}, {}, {}
            for z in model.species_:
                g = f[f"species/{z}"]
                model.baselines_[z] = g["baseline"][()]
                model.sparse_features_[z] = {int(k): v[()] for k, v in g["sparse_features"].items()}
                for k, v in g["projectors"].items():
                    model.projectors_[(z, int(k))] = v[()]
        model._build_layout()
        if model.n_weights_ != model.weights_.size:
            raise ValueError(f"{path} is inconsistent: {model.weights_.size} weights for a layout of {model.n_weights_}")
        return model

    def export(self, path: Union[str, Path]) -> None:
        """The model as the flat little-endian binary that C and C++ hosts read (``rhocast::load_model``,
        format in cpp/include/rhocast/model_file.hpp), written atomically. Float64 throughout, so the
        C++ predictions equal :meth:`predict` to rounding."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("the model is not fitted: call fit() or DensityModel.load()")
        # Molecular ECPs only: the core's dipole and charges put the nuclei at Z, wrong by the cores. Cell
        # models (GTH pseudopotentials) are exported for their coefficients; the C API refuses the dipole
        # of a periodic structure.
        molecular = not self.reference_settings_.get("pseudo")
        ecp = [z for z, q in zip(self.species_, self.nuclear_charges(self.species_)) if q != z] if molecular else []
        if ecp:
            from ase.data import chemical_symbols

            raise ValueError(f"the model's references use an ECP for {', '.join(chemical_symbols[z] for z in ecp)} "
                             f"(basis {self.reference_settings_.get('basis')!r}); exported models must be "
                             "all-electron (C/C++ hosts give the dipole with the nuclei at Z)")
        d = self.descriptor_
        lambdas = range(d.max_lambda + 1)
        parts = [EXPORT_MAGIC, _int64(EXPORT_VERSION), _float64([d.cutoff, d.atomic_width, d.cutoff_width]),
                 _int64([d.max_radial, d.max_angular, d.max_lambda]), _float64([self.zeta]),
                 _int64([len(self.species_), *self.species_])]
        for lam in lambdas:
            cols = [] if d.selected_ is None else list(d.selected_[lam])
            parts.append(_int64([len(cols), *cols]))
        for z in self.species_:
            shells = self.auxbasis_.shells[z]
            parts.append(_int64([z, len(shells)]))
            for sh in shells:
                parts += [_int64([sh.l, len(sh.exponents)]), _float64(sh.exponents), _float64(sh.coefficients)]
            parts += [_int64(len(self.baselines_[z])), _float64(self.baselines_[z])]
            feats = self.sparse_features_[z]
            matrices = [feats[lam].reshape(-1, feats[lam].shape[2]) for lam in lambdas]
            matrices += [self.projectors_.get((z, lam), np.zeros((0, 0))) for lam in lambdas]
            for m in matrices:
                parts += [_int64(m.shape), _float64(m)]
        parts += [_int64(len(self.weights_)), _float64(self.weights_), b"END\0"]
        from rhocast.atomic import write_bytes_atomic

        write_bytes_atomic(path, b"".join(parts))

    def __getstate__(self) -> dict:
        """Pickling and deep copies leave out the compiled predictor (rebuilt on first use)."""
        return {k: v for k, v in self.__dict__.items() if k != "_core_"}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k in ("n_sparse", "zeta", "metric",
                                                                                      "regularization", "cutoff"))
        return f"DensityModel({params})"


def _used_features(model: DensityModel, z: int, feats: dict) -> dict:
    """Sparse features of species ``z`` with the lambdas it has no shell of emptied (only lambda = 0 enters
    every kernel): hydrogen's l <= 2 basis needs 9 of the 25 (2 lambda + 1) rows per environment at l <= 4."""
    return {lam: f if lam == 0 or model._has_channel(z, lam) else f[:0] for lam, f in feats.items()}


def _span(block: tuple[int, int]) -> tuple[int, int]:
    """(start, stop) of a layout block (start, size)."""
    return block[0], block[0] + block[1]


def _int64(values) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()


def _float64(values) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def _read_shells(group) -> list:
    from rhocast.basis import Shell

    ends = np.cumsum(group["n_primitives"][()])
    exps, coefs = group["exponents"][()], group["coefficients"][()]
    return [Shell(int(l), exps[e - n:e], coefs[e - n:e])
            for l, n, e in zip(group["l"][()], group["n_primitives"][()], ends)]


def _current_names(params: dict) -> dict:
    """Hyper-parameters of a file written by an earlier version, under today's names."""
    params = {k: v for k, v in params.items() if k not in ("checkpoint", "checkpoint_every")}  # now fit() options
    if "metric" in params:
        params["loss_metric"] = params.pop("metric")
    return params


class _Checkpoint:
    """CG weights and iteration count in an .npz file, tagged with the problem's fingerprint."""

    def __init__(self, path: Union[str, Path], every: int, fingerprint: str):
        self.path, self.every, self.fingerprint = Path(path), every, fingerprint

    def save(self, w: np.ndarray, it: int) -> None:
        from rhocast.atomic import atomic_write

        with atomic_write(self.path) as tmp, open(tmp, "wb") as fh:  # a file object: savez adds no .npz suffix
            np.savez(fh, w=w, it=it, fingerprint=self.fingerprint)

    def load(self) -> Optional[tuple[np.ndarray, int]]:
        """(weights, iteration) to resume from, None without a file; an error for another problem's."""
        if not self.path.exists():
            print(f"no checkpoint at {self.path}: CG starts from zero")
            return None
        with np.load(self.path) as d:
            if "fingerprint" not in d or str(d["fingerprint"]) != self.fingerprint:
                raise ValueError(f"checkpoint {self.path} belongs to another problem (other data, loss, "
                                 "regularization or hyper-parameters): remove it or fit without resume")
            return d["w"].copy(), int(d["it"])
