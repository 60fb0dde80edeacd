"""Farthest-point selection of training structures: invariance, coverage, nesting."""
import numpy as np
import pytest
from ase.build import molecule
from scipy.spatial.transform import Rotation

from rhocast.selection import farthest_structures, structure_fingerprints

SPECIES = [1, 6, 7, 8]


def _distorted(name, seed, amplitude=0.05):
    a = molecule(name)
    a.positions += np.random.default_rng(seed).normal(scale=amplitude, size=a.positions.shape)
    return a


def test_fingerprint_is_invariant_under_rotation_translation_and_permutation():
    a = _distorted("CH3CH2OH", 0)
    b = a.copy()
    b.positions = Rotation.random(random_state=3).apply(b.positions) + [1.0, -2.0, 0.5]
    b = b[np.random.default_rng(1).permutation(len(b))]
    fa, fb = structure_fingerprints([a, b], SPECIES)
    assert np.abs(fa).max() > 0.1
    np.testing.assert_allclose(fa, fb, atol=1e-10)


def test_selection_covers_the_rare_molecules_before_repeating_the_common_one():
    waters = [_distorted("H2O", s) for s in range(6)]
    pool = waters[:3] + [_distorted("NH3", 10)] + waters[3:] + [_distorted("CH4", 11)]
    picked = farthest_structures(pool, 3, SPECIES)
    names = [pool[i].get_chemical_formula() for i in picked]
    assert sorted(names) == ["CH4", "H2O", "H3N"]  # each of the three compositions once
    assert list(farthest_structures(pool, 5, SPECIES)[:3]) == list(picked)  # selections nest


def test_selection_size_is_checked():
    with pytest.raises(ValueError, match="n=3"):
        farthest_structures([molecule("H2O")], 3, SPECIES)
