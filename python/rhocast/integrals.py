"""One integral context per molecule, in the spirit of PySCF's ``df.DF``: built once and shared by the
reference fit, the Kohn-Sham step, the Newton step and the SCF guess, so that nothing is computed twice.

It holds the orbital molecule, the auxiliary molecule, the Cholesky factors of the auxiliary metrics,
the three-centre integrals (mu nu|P) (or <mu nu P>) -- kept in memory once computed when they fit in
half of ``max_memory_mb``, recomputed batch by batch otherwise -- and the DFT grids by level, with the one
loop over orbital values on them. One rule sizes every batch and grid block: :meth:`IntegralContext.block_size`. Atomic units; auxiliary-basis
vectors in PySCF order of ``auxmol``.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import scipy.linalg

METRICS = ("coulomb", "overlap")
# Grid points per block in rhocast's own grid loops (128 of PySCF's BLKSIZE boxes of 56). Larger blocks
# only cost: a 22-atom QM9 Kohn-Sham step took 59 s with 57k-point blocks (max_memory 4000 MB) against
# 35 s with 7k-point ones (page faults and cache misses on the big temporaries; busy 2-core machine).
GRID_BLOCK = 7168
_INTOR = {"coulomb": ("int3c2e", "int2c2e"), "overlap": ("int3c1e", "int1e_ovlp")}


def nuclear_attraction(mol) -> np.ndarray:
    """V (nao, nao), Hartree: the attraction of the nuclei, int1e_nuc with the charges of
    ``mol.atom_charges()``, plus the scalar ECP (ECPscalar) where ``mol`` has one, as PySCF's
    ``get_hcore`` builds it (:mod:`rhocast.ecp`)."""
    v = mol.intor_symmetric("int1e_nuc")
    if mol.has_ecp():
        v = v + mol.intor_symmetric("ECPscalar")
    return v


def one_electron_energies(mol, dm_total: np.ndarray, kinetic: Optional[np.ndarray] = None,
                          electron_nuclear: Optional[np.ndarray] = None) -> dict[str, float]:
    """The kinetic energy tr(T D) and the electron-nuclear energy tr(V D) (Hartree) of the total
    (spin-summed) density matrix ``dm_total`` (nao, nao) of ``mol``; T (int1e_kin) and V
    (:func:`nuclear_attraction`, the ECP included) (nao, nao) are computed when not given (a cell passes
    its own, e.g. V of a pseudopotential)."""
    if kinetic is None:
        kinetic = mol.intor_symmetric("int1e_kin")
    if electron_nuclear is None:
        electron_nuclear = nuclear_attraction(mol)
    return {"kinetic": float(np.einsum("ij,ji->", kinetic, dm_total)),
            "electron_nuclear": float(np.einsum("ij,ji->", electron_nuclear, dm_total))}


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")


class IntegralContext:
    """Integrals of ``mol`` (orbitals) and ``auxmol`` (density), computed on first use and kept.

    ``max_memory_mb`` (default ``mol.max_memory``) bounds every batch and block; the stored
    three-centre integrals take at most half of it.
    """

    def __init__(self, mol, auxmol, max_memory_mb: Optional[float] = None):
        self.mol, self.auxmol = mol, auxmol
        self.max_memory_mb = float(mol.max_memory if max_memory_mb is None else max_memory_mb)
        if self.max_memory_mb <= 0:
            raise ValueError(f"max_memory_mb must be positive, not {max_memory_mb!r}")
        self._three_center: dict[str, np.ndarray] = {}
        self._factors: dict[str, tuple] = {}
        self._metrics: dict[str, np.ndarray] = {}
        self._grids: dict[int, object] = {}
        self._core_basis = None
        self._auxbasis = None

    @property
    def numbers(self) -> np.ndarray:
        """Atomic numbers of the atoms (n_atoms,)."""
        from rhocast.basis import atomic_numbers

        return atomic_numbers(self.mol)

    @property
    def auxbasis(self):
        """The :class:`rhocast.basis.AuxiliaryBasis` of ``auxmol`` (its coefficients' canonical order)."""
        if self._auxbasis is None:
            from rhocast.basis import AuxiliaryBasis

            self._auxbasis = AuxiliaryBasis.of_auxmol(self.auxmol)
        return self._auxbasis

    @classmethod
    def of(cls, mol, auxbasis, max_memory_mb: Optional[float] = None) -> "IntegralContext":
        """The context of ``mol`` with the auxiliary basis ``auxbasis`` (a PySCF spec or an AuxiliaryBasis)."""
        from rhocast.basis import AuxiliaryBasis, atomic_numbers

        if not isinstance(auxbasis, AuxiliaryBasis):
            auxbasis = AuxiliaryBasis(auxbasis, set(atomic_numbers(mol)))
        return cls(mol, auxbasis.make_auxmol(mol), max_memory_mb)

    # --- one block-size rule ------------------------------------------------------------------------
    def block_size(self, bytes_per_item: float, fraction: float = 0.5, multiple: int = 1,
                   limit: Optional[int] = None) -> int:
        """How many items of ``bytes_per_item`` fit in ``fraction`` of ``max_memory_mb`` (at least one
        ``multiple``, at most ``limit``, e.g. :data:`GRID_BLOCK` grid points), rounded down to a multiple
        of ``multiple``."""
        n = int(fraction * self.max_memory_mb * 1e6 / bytes_per_item)
        if limit is not None:
            n = min(n, limit)
        return max(multiple, n // multiple * multiple)

    # --- auxiliary metric ---------------------------------------------------------------------------
    def metric(self, metric: str = "coulomb") -> np.ndarray:
        """J_PQ = (P|Q) (coulomb) or S_PQ = <P|Q> (overlap), PySCF order, (naux, naux)."""
        check_metric(metric)
        if metric not in self._metrics:
            self._metrics[metric] = self.auxmol.intor(_INTOR[metric][1])
        return self._metrics[metric]

    def solve_metric(self, v: np.ndarray, metric: str = "coulomb") -> np.ndarray:
        """M^-1 v by the (kept) Cholesky factor of the metric."""
        if metric not in self._factors:
            self._factors[metric] = scipy.linalg.cho_factor(self.metric(metric))
        return scipy.linalg.cho_solve(self._factors[metric], v)

    # --- three-centre integrals ---------------------------------------------------------------------
    def three_center(self, metric: str = "coulomb", fraction: float = 0.5) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, stop, ints) over batches of auxiliary shells; ints (nao_pair, stop - start), orbital
        pairs packed (s2ij, mu >= nu). Served from memory when kept; a batch of a recomputation takes
        at most ``fraction`` of ``max_memory_mb``."""
        check_metric(metric)
        naux = self.auxmol.nao
        npair = self.mol.nao * (self.mol.nao + 1) // 2
        if metric in self._three_center:
            yield 0, naux, self._three_center[metric]
            return
        if 8 * npair * naux <= 0.5e6 * self.max_memory_mb:
            # every auxiliary shell in one batch, kept as computed (stacking batches copied it: 0.75 s
            # on a 22-atom QM9 molecule)
            self._three_center[metric] = next(self._batches(metric, npair, naux), (0, 0, np.zeros((npair, 0))))[2]
            yield 0, naux, self._three_center[metric]
            return
        yield from self._batches(metric, npair, self.block_size(8 * npair, fraction))

    def _batches(self, metric: str, npair: int, per_batch: int):
        from pyscf.df.incore import aux_e2

        auxmol, ao_loc = self.auxmol, self.auxmol.ao_loc
        s0 = 0
        while s0 < auxmol.nbas:
            s1 = s0 + 1
            while s1 < auxmol.nbas and ao_loc[s1 + 1] - ao_loc[s0] <= per_batch:
                s1 += 1
            yield ao_loc[s0], ao_loc[s1], aux_e2(self.mol, auxmol, _INTOR[metric][0], aosym="s2ij",
                                                 shls_slice=(0, self.mol.nbas, 0, self.mol.nbas, s0, s1))
            s0 = s1

    # --- auxiliary functions on grids ---------------------------------------------------------------
    def _core_arguments(self) -> tuple:
        """The compiled core's basis, atomic numbers and positions (Bohr) of this molecule."""
        if self._core_basis is None:
            self._core_basis = self.auxbasis.to_core()
        return self._core_basis, self.numbers, self.mol.atom_coords()

    def aux_functions(self, coords: np.ndarray, deriv: int = 0, tol: float = 1e-12) -> np.ndarray:
        """phi_P (and with ``deriv`` = 1 their gradients) at ``coords`` (n_points, 3), Bohr:
        (1 + 3 deriv, n_points, naux), canonical order. Collocated by the compiled core with per-shell
        screening (values below ``tol`` are dropped) and OpenMP threads."""
        from rhocast import _core

        coords = np.ascontiguousarray(coords, dtype=float)
        values = _core.collocate_functions(*self._core_arguments(), coords, deriv, tol)
        return values.reshape(1 + 3 * deriv, len(coords), -1)

    def aux_density(self, coords: np.ndarray, coefficients: np.ndarray, deriv: int = 0,
                    tol: float = 1e-12) -> np.ndarray:
        """rho = sum_P c_P phi_P (and with ``deriv`` = 1 its gradient) at ``coords`` (n_points, 3), Bohr:
        (1 + 3 deriv, n_points), e/Bohr^3 (and e/Bohr^4); ``coefficients`` (naux,) in canonical order.
        Collocated by the compiled core without the (n_points, naux) functions: each shell's functions
        are contracted with its coefficients first, and a shell is skipped where its contribution is
        below ``tol``. Memory: the result only, 8 (1 + 3 deriv) bytes per point."""
        from rhocast import _core

        coefficients = np.asarray(coefficients, dtype=float)
        if coefficients.shape != (self.auxmol.nao,):
            raise ValueError(f"coefficients must have shape ({self.auxmol.nao},), not {coefficients.shape}")
        coords = np.ascontiguousarray(coords, dtype=float)
        return _core.collocate_density_points(*self._core_arguments(), coords, coefficients, deriv, tol)

    # --- orbitals on grids --------------------------------------------------------------------------
    def orbital_blocks(self, level: int, deriv: int) -> Iterator[tuple]:
        """(ao, mask, weight, p0, p1) over blocks of the grid of ``level``: the orbitals (and with
        ``deriv`` = 1 their gradients) at points p0:p1 as PySCF's ``eval_ao`` gives them ((1 + 3 deriv,
        n, nao), or (n, nao) for ``deriv`` = 0), screened by the grid's mask, and the weights. ``ao`` is
        one buffer, overwritten by the next block; blocks take at most a quarter of ``max_memory_mb``.
        Not kept between passes: on a 22-atom QM9 molecule (level 3, 1.35 GB of values) keeping them cost
        4-7 s of page faults and saved 2.6 s of recomputation (busy 2-core machine).

        ``mask`` is the grid's screening mask from p0 on, for PySCF's sparse products (``_dot_ao_ao_sparse``),
        or None where dense products are faster, by PySCF's own rule (``NumInt.block_loop``): sparse only
        when nao > ``SWITCH_SIZE`` or at most half of the block's (point box, shell) pairs survive. On a
        22-atom QM9 molecule (nao 191, 75 % of the pairs kept) the sparse V_xc product took 9.5 s against
        2.6 s for the dense one."""
        from pyscf import dft

        grids = self.grids(level)
        comp = 1 + 3 * deriv
        block = self.block_size(2 * 8 * comp * self.mol.nao, fraction=0.25, multiple=dft.gen_grid.BLKSIZE,
                                limit=GRID_BLOCK)
        # one buffer for every block: fresh arrays cost page faults (2 of 4.6 s on that molecule)
        buffer = np.empty(comp * self.mol.nao * min(block, grids.weights.size))
        for p0 in range(0, grids.weights.size, block):
            p1 = min(p0 + block, grids.weights.size)
            mask = grids.non0tab[p0 // dft.gen_grid.BLKSIZE:]
            ao = dft.numint.eval_ao(self.mol, grids.coords[p0:p1], deriv=deriv, non0tab=mask,
                                    cutoff=grids.cutoff, out=buffer)
            own = mask[:-(-(p1 - p0) // dft.gen_grid.BLKSIZE)]  # this block's boxes
            sparse = self.mol.nao > dft.numint.SWITCH_SIZE or np.count_nonzero(own) <= 0.5 * own.size
            yield ao, mask if sparse else None, grids.weights[p0:p1], p0, p1

    # --- DFT grids ----------------------------------------------------------------------------------
    def grids(self, level: int, grids=None):
        """PySCF's DFT grids of ``mol`` at ``level`` with their screening mask (``non0tab``), built once
        (:func:`build_grids`);
        ``grids`` (e.g. an SCF's ``mf.grids`` of that level) is adopted instead of building another (and
        given its mask if it has none, which the SCF then uses too)."""
        if level not in self._grids:
            if grids is None or grids.level != level:
                from pyscf import dft

                grids = dft.gen_grid.Grids(self.mol)
                grids.level = level
            if grids.coords is None:
                build_grids(grids)
            elif grids.non0tab is None:
                grids.non0tab = grids.screen_index = grids.make_mask(self.mol, grids.coords)
            self._grids[level] = grids
        return self._grids[level]


def build_grids(grids) -> None:
    """Build PySCF ``grids`` (a ``dft.gen_grid.Grids`` of its ``mol`` and ``level``) in place with their
    screening mask: the same points, weights, order and mask as ``grids.build(with_non0tab=True)``.

    Only the grouping of the points into spatial boxes differs in how it is computed: PySCF's
    ``arg_group_grids`` ranks the (n_points, 3) box indices with ``numpy.unique(axis=0)``, a row sort
    that took 1.8 of the 3.3 s build on a 22-atom QM9 molecule (level 3, 254k points); one integer key
    per box, ordered as the rows are, gives the same stable order by one ``argsort``.
    """
    from pyscf.dft import gen_grid

    mol = grids.mol
    grids.build(with_non0tab=False, sort_grids=False)
    n = int(np.count_nonzero(grids.atm_idx >= 0))  # the alignment padding (atm_idx -1) comes last and stays
    order = np.concatenate([_box_order(mol.atom_coords(), grids.coords[:n], gen_grid.GROUP_BOX_SIZE,
                                       gen_grid.GROUP_BOUNDARY_PENALTY), np.arange(n, grids.weights.size)])
    for name in ("coords", "weights", "atm_idx", "quadrature_weights"):
        setattr(grids, name, getattr(grids, name)[order])
    grids.non0tab = grids.screen_index = grids.make_mask(mol, grids.coords)


def _box_order(atom_coords: np.ndarray, coords: np.ndarray, box_size: float, penalty: float) -> np.ndarray:
    """PySCF's ``arg_group_grids``: the stable order of ``coords`` (n, 3), Bohr, by the box (edges about
    ``box_size``, the atoms' bounding box widened by ``penalty``, outer points clipped into the outermost
    boxes) that holds each point, boxes in lexicographic order of their (x, y, z) indices."""
    lower, upper = atom_coords.min(axis=0) - penalty, atom_coords.max(axis=0) + penalty
    boxes = ((upper - lower) * (1.0 / box_size)).round().astype(int)
    ids = np.floor((coords - lower) * (1.0 / ((upper - lower) / boxes))).astype(int)
    ids = np.clip(ids, -1, boxes) + 1  # 0 .. boxes + 1 in each direction
    key = (ids[:, 0] * (boxes[1] + 2) + ids[:, 1]) * (boxes[2] + 2) + ids[:, 2]
    return np.argsort(key, kind="stable")
