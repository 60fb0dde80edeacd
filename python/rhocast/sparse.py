"""Block-sparse symmetric matrices between atom pairs: the compiled class ``BlockSparseMatrix(block_sizes)``
(``block_sizes[i]`` functions on atom i) and conversions to and from dense and SciPy matrices."""
from __future__ import annotations

import numpy as np
import scipy.sparse

from rhocast._core import BlockSparseMatrix


def from_dense(matrix: np.ndarray, block_sizes) -> BlockSparseMatrix:
    """Every atom-pair block of a dense symmetric matrix (e.g. PySCF's Coulomb metric ``int2c2e``)."""
    a = BlockSparseMatrix([int(s) for s in block_sizes])
    off = np.concatenate([[0], np.cumsum(block_sizes)])
    for i in range(len(block_sizes)):
        for j in range(i, len(block_sizes)):
            a.add_block(i, j, np.ascontiguousarray(matrix[off[i]:off[i + 1], off[j]:off[j + 1]]))
    return a


def to_scipy(a: BlockSparseMatrix) -> scipy.sparse.csr_matrix:
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
