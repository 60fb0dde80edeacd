"""Block-sparse symmetric matrices between atom pairs (the compiled ``BlockSparseMatrix``)."""
from __future__ import annotations

import numpy as np
import scipy.sparse


def BlockSparseMatrix(block_sizes):  # noqa: N802 - a factory that reads like the class it returns
    """A new empty ``_core.BlockSparseMatrix`` with ``block_sizes[i]`` functions on atom i."""
    from rhocast import _core

    return _core.BlockSparseMatrix([int(s) for s in block_sizes])


def from_dense(matrix: np.ndarray, block_sizes) -> "object":
    """Every atom-pair block of a dense symmetric matrix (e.g. PySCF's Coulomb metric ``int2c2e``)."""
    a = BlockSparseMatrix(block_sizes)
    off = np.concatenate([[0], np.cumsum(block_sizes)])
    for i in range(len(block_sizes)):
        for j in range(i, len(block_sizes)):
            a.add_block(i, j, np.ascontiguousarray(matrix[off[i]:off[i + 1], off[j]:off[j + 1]]))
    return a


def to_scipy(a) -> scipy.sparse.csr_matrix:
    """The full symmetric matrix as ``scipy.sparse.csr_matrix``."""
    off = np.asarray(a.offsets)
    rows, cols, vals = [], [], []
    for i, j, block in a.entries():
        r, c = np.meshgrid(np.arange(off[i], off[i + 1]), np.arange(off[j], off[j + 1]), indexing="ij")
        rows.append(r.ravel()); cols.append(c.ravel()); vals.append(block.ravel())
        if i != j:
            rows.append(c.ravel()); cols.append(r.ravel()); vals.append(block.ravel())
    n = int(off[-1])
    return scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(n, n))
