"""The oracle itself must be right: orthonormal harmonics, orthogonal D, group property."""
import numpy as np
from scipy.integrate import lebedev_rule

from equivariance import random_rotation, real_spherical_harmonics, wigner_d_real


def test_real_harmonics_orthonormal_and_p_convention():
    x, w = lebedev_rule(41)
    for l in range(7):
        y = real_spherical_harmonics(l, x.T)
        np.testing.assert_allclose((y * w[:, None]).T @ y, np.eye(2 * l + 1), atol=1e-12)
    # m = +1 is +x, m = -1 is +y, m = 0 is +z, all with positive sign
    y1 = real_spherical_harmonics(1, np.eye(3))
    c = np.sqrt(3 / (4 * np.pi))
    np.testing.assert_allclose(y1, c * np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]]), atol=1e-14)


def test_wigner_d_is_a_representation():
    r1, r2 = random_rotation(1), random_rotation(2)
    for l in range(7):
        d1, d2, d12 = (wigner_d_real(l, r) for r in (r1, r2, r1 @ r2))
        np.testing.assert_allclose(d1 @ d1.T, np.eye(2 * l + 1), atol=1e-10)
        np.testing.assert_allclose(d12, d1 @ d2, atol=1e-10)
