"""One communicator for serial and MPI runs, deterministic reductions, and dealing work to ranks.

``world()`` is mpi4py's ``COMM_WORLD`` (wrapped) when mpi4py is importable, otherwise a serial stub with
the same methods; without mpi4py everything runs as in one process. Sums are taken in rank order
(allgather, then add rank 0, 1, ...), never in the order messages arrive, so a run is bitwise
reproducible for a given number of ranks and R = 1 and R = 2 differ only by the regrouping of the sum.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np


class SerialComm:
    """The communicator of one process: rank 0 of 1, every collective the identity."""

    rank, size = 0, 1

    def barrier(self) -> None:
        pass

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def allgather(self, obj: Any) -> list:
        return [obj]

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return [obj]

    def allreduce_sum(self, x):
        return x

    def reduce_sum(self, x: np.ndarray) -> Optional[np.ndarray]:
        return x

    def abort(self, code: int) -> None:
        pass


class MPIComm(SerialComm):
    """An mpi4py communicator with the collectives rhocast uses (pickled objects: the arrays summed are
    weight-sized, once per CG iteration)."""

    _REDUCE_TAG = 7301  # point-to-point messages of reduce_sum

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def barrier(self) -> None:
        self.comm.Barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list:
        return self.comm.allgather(obj)

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return self.comm.gather(obj, root=root)

    def abort(self, code: int) -> None:
        """End every rank: one that failed alone would leave the others waiting in a collective."""
        self.comm.Abort(code)

    def allreduce_sum(self, x):
        """Sum of ``x`` (a number or an array) over ranks, added in rank order on every rank."""
        parts = self.comm.allgather(x)
        total = np.array(parts[0], dtype=float, copy=True) if isinstance(x, np.ndarray) else parts[0]
        for p in parts[1:]:
            total = total + p
        return total

    def reduce_sum(self, x: np.ndarray) -> Optional[np.ndarray]:
        """Sum of the float64 arrays ``x`` over ranks on rank 0 (None elsewhere), added in rank order as in
        :meth:`allreduce_sum` (the same bits). Rank 0 adds into its own ``x`` (overwritten) and receives
        one rank's array at a time: two arrays there, none beyond its own elsewhere, where an allgather
        holds R copies on every rank (the direct solver's Hessian is n_weights^2 x 8 B)."""
        x = np.ascontiguousarray(x, dtype=float)
        if self.rank:
            self.comm.Send(x, dest=0, tag=self._REDUCE_TAG)
            return None
        buf = np.empty_like(x)
        for r in range(1, self.size):
            self.comm.Recv(buf, source=r, tag=self._REDUCE_TAG)
            x += buf
        return x


def world() -> SerialComm:
    """``MPI.COMM_WORLD`` as an :class:`MPIComm` when mpi4py is importable and there are several ranks,
    otherwise :class:`SerialComm` (a lone process needs no MPI)."""
    try:
        from mpi4py import MPI
    except ImportError:
        return SerialComm()
    return MPIComm(MPI.COMM_WORLD) if MPI.COMM_WORLD.Get_size() > 1 else SerialComm()


def deal(costs: Sequence[float], size: int) -> list[list[int]]:
    """Indices of ``costs`` per rank: largest cost first, each to the least loaded rank (ties: lowest
    rank, then lowest index), each rank's list sorted. Deterministic, so every rank computes the same deal.
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be an integer >= 1 (the number of ranks), not {size!r}")
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 1 or np.any(~np.isfinite(costs)) or np.any(costs < 0):
        raise ValueError("costs must be a 1-d sequence of finite non-negative numbers")
    load = [0.0] * size
    shards: list[list[int]] = [[] for _ in range(size)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(size), key=lambda r: (load[r], r))
        shards[r].append(i)
        load[r] += costs[i]
    return [sorted(s) for s in shards]


def my_structures(structures: Sequence, comm: SerialComm) -> list[int]:
    """Positions in ``structures`` (``ase.Atoms``) that ``comm``'s rank works on: :func:`deal` by atoms^2,
    the cost of a structure's kernels, metrics and predictions (the block-sparse metric grows with
    atoms x neighbours, the per-atom work with atoms)."""
    return deal([len(a) ** 2 for a in structures], comm.size)[comm.rank]
