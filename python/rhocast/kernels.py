"""Sparse equivariant kernels and their RKHS projection (METHOD.md section 4).

K^lambda_{mu mu'}(i, j) = (p_i^{lambda mu} . p_j^{lambda mu'}) (p_i^0 . p_j^0)^(zeta - 1), between atoms of
one species. Shapes: features of order lambda are (n, 2 lambda + 1, n_features).
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def kernel(feats_a: dict[int, np.ndarray], feats_b: dict[int, np.ndarray], lambda_: int,
           zeta: float) -> np.ndarray:
    """K^lambda between atoms a and b, shape (n_a, 2 lambda + 1, n_b, 2 lambda + 1)."""
    k = np.einsum("imf,jnf->imjn", feats_a[lambda_], feats_b[lambda_], optimize=True)
    if zeta != 1:
        k0 = np.einsum("if,jf->ij", feats_a[0][:, 0], feats_b[0][:, 0])
        k = k * (k0 ** (zeta - 1))[:, None, :, None]
    return k


def rkhs_projector(k_mm: np.ndarray, threshold: float, max_dim: Optional[int] = None) -> np.ndarray:
    """V = U_D L_D^(-1/2) of K_MM = U L U^T, keeping eigenvalues above ``threshold`` times the largest,
    and of those at most ``max_dim`` (the largest; None: all).

    ``k_mm`` has shape (M (2 lambda + 1), M (2 lambda + 1)); V has shape (M (2 lambda + 1), D) with
    D = min(max_dim, number above the cut), columns in ascending eigenvalue order. Psi = K_iM V and with
    it the memory of the fit and the weights per radial channel scale with D: the cap is the memory lever
    (dropping the smallest eigenvalues keeps the best rank-D approximation of K_MM).
    """
    vals, vecs = np.linalg.eigh(0.5 * (k_mm + k_mm.T))
    keep = np.flatnonzero(vals > threshold * vals.max())
    if max_dim is not None:
        keep = keep[max(0, len(keep) - max_dim):]  # eigh sorts ascending: the largest are last
    return vecs[:, keep] / np.sqrt(vals[keep])
