"""The density regression summed over ranks: each rank's ``rhocast._core.Regression`` holds its shard of
the training structures; this wrapper has the same solver-facing methods and reduces them.

The regularisation (eta |w|^2 and its derivatives) is added by rank 0 only, once, not R times; the
scale 2/N uses the total number of structures over all shards (``set_total_structures``).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from rhocast.parallel import SerialComm


class ShardedRegression:
    """``reg`` (this rank's shard) and ``comm``; every method is a collective call."""

    def __init__(self, reg, comm: SerialComm, n_total: int):
        self.reg, self.comm = reg, comm
        reg.set_total_structures(int(n_total))
        self._eta = comm.rank == 0

    @property
    def memory_bytes(self) -> int:
        """This rank's bytes (Psi and metrics of its shard)."""
        return self.reg.memory_bytes

    @property
    def psi_memory_bytes(self) -> int:
        """This rank's bytes of Psi alone."""
        return self.reg.psi_memory_bytes

    def rhs(self) -> np.ndarray:
        return self.comm.allreduce_sum(self.reg.rhs())

    def solve_direct(self) -> np.ndarray:
        """Weights of the direct solve H w = b: the Hessian summed onto rank 0 in rank order
        (``comm.reduce_sum``: two n_weights^2 arrays there, one on the others, never R), Cholesky in
        place there, the weights broadcast."""
        h = self.comm.reduce_sum(self.reg.hessian(self._eta))
        b = self.rhs()
        w = None
        if h is not None:
            w = scipy.linalg.cho_solve(scipy.linalg.cho_factor(h, overwrite_a=True, check_finite=False), b)
        del h
        return self.comm.bcast(w)

    def hessian_product(self, v: np.ndarray) -> np.ndarray:
        return self.comm.allreduce_sum(self.reg.hessian_product(v, self._eta))

    def loss(self, w: np.ndarray) -> float:
        return float(self.comm.allreduce_sum(self.reg.loss(w, self._eta)))

    def jacobi_blocks(self, starts: list[int], sizes: list[int]) -> list[np.ndarray]:
        """The preconditioner's blocks summed over ranks, once per solve, block by block: a reduction
        holds R copies of one block, not of the whole preconditioner (and serially none)."""
        blocks = self.reg.jacobi_blocks(starts, sizes, self._eta)
        return [self.comm.allreduce_sum(blocks.pop(0)) for _ in range(len(blocks))]
