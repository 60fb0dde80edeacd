"""Test utility: real spherical harmonics from scipy and Wigner D matrices built from them.

Independent of rhocast's own code on purpose: it is the oracle for the density coefficients
(METHOD.md section 2) and for the lambda-SOAP features (section 3).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from scipy.special import sph_harm_y


def real_spherical_harmonics(l: int, xyz: np.ndarray) -> np.ndarray:
    """Y_lm(r/|r|) for m = -l..l, shape (n_points, 2l+1).

    m > 0: sqrt(2) (-1)^m Re Y_l^m; m < 0: sqrt(2) (-1)^m Im Y_l^|m|; m = 0: Y_l^0, with the
    Condon-Shortley phase in the complex Y (scipy's convention). m=+1 is +x, m=-1 is +y.
    """
    xyz = np.atleast_2d(xyz)
    r = np.linalg.norm(xyz, axis=1)
    theta = np.arccos(np.clip(xyz[:, 2] / r, -1.0, 1.0))
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    out = np.empty((len(xyz), 2 * l + 1))
    for m in range(-l, l + 1):
        y = sph_harm_y(l, abs(m), theta, phi)
        if m > 0:
            out[:, m + l] = np.sqrt(2) * (-1) ** m * y.real
        elif m < 0:
            out[:, m + l] = np.sqrt(2) * (-1) ** m * y.imag
        else:
            out[:, l] = y.real
    return out


def wigner_d_real(l: int, rotation: np.ndarray, n_points: int = 64, seed: int = 0) -> np.ndarray:
    """D^l(R) with Y(R r) = D^l(R) Y(r); shape (2l+1, 2l+1).

    Coefficients of a rotated density and features of a rotated structure transform as
    c(R.A) = D^l(R) c(A). Built as Y(R r_k) pinv(Y(r_k)) over random points r_k.
    """
    pts = np.random.default_rng(seed).normal(size=(n_points, 3))
    y0 = real_spherical_harmonics(l, pts).T
    y1 = real_spherical_harmonics(l, pts @ np.asarray(rotation).T).T
    return y1 @ np.linalg.pinv(y0)


def random_rotation(seed: int) -> np.ndarray:
    """A random proper rotation matrix (3, 3)."""
    return Rotation.random(random_state=seed).as_matrix()
