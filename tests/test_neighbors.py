"""Linked-cell neighbour lists against a brute-force search over lattice images."""
import itertools

import numpy as np
import pytest
from ase import Atoms

from rhocast import _core
from rhocast.neighbors import neighbor_list


def _brute_force(atoms, cutoff):
    pos = atoms.positions
    if not atoms.pbc.any():
        shifts = [np.zeros(3, int)]
    else:
        inv = np.linalg.inv(atoms.cell.array)
        reach = [int(np.ceil(cutoff * np.linalg.norm(inv[:, k]))) + 1 for k in range(3)]
        shifts = [np.array(s) for s in itertools.product(*[range(-r, r + 1) for r in reach])]
    out = set()
    for s in shifts:
        t = s @ atoms.cell.array
        for i in range(len(atoms)):
            d = np.linalg.norm(pos + t - pos[i], axis=1)
            for j in np.flatnonzero((d < cutoff) & (d > 0)):
                out.add((i, int(j), *map(int, s)))
    return out


def _as_set(result):
    i, j, s, d, _ = result
    return {(int(a), int(b), *map(int, c)) for a, b, c in zip(i, j, s)}


CELLS = {
    "molecule": None,
    "orthorhombic": np.diag([5.0, 6.0, 7.0]),
    "triclinic": np.array([[4.0, 0, 0], [3.1, 3.5, 0], [-1.7, 2.2, 3.3]]),
    "small (cutoff > cell)": np.array([[2.0, 0, 0], [0.7, 2.1, 0], [0.3, 0.5, 1.9]]),
}


@pytest.mark.parametrize("name", CELLS)
def test_against_brute_force(name):
    rng = np.random.default_rng(1)
    cell = CELLS[name]
    n = 25 if cell is None else 8
    if cell is None:
        atoms = Atoms(f"H{n}", positions=rng.uniform(0, 6, (n, 3)))
    else:
        # positions partly outside the cell, to exercise wrapping
        atoms = Atoms(f"H{n}", positions=rng.uniform(-0.5, 1.5, (n, 3)) @ cell, cell=cell, pbc=True)
    cutoff = 3.5
    got = _as_set(neighbor_list(atoms, cutoff))
    assert got == _brute_force(atoms, cutoff)
    i, j, s, d, vec = neighbor_list(atoms, cutoff)
    expected = atoms.positions[j] - atoms.positions[i] + s @ atoms.cell.array
    np.testing.assert_allclose(vec, expected, atol=1e-12)
    np.testing.assert_allclose(d, np.linalg.norm(expected, axis=1), atol=1e-12)
    if name.startswith("small"):
        assert np.any(i == j)  # an atom sees its own images


def test_serial_equals_parallel():
    rng = np.random.default_rng(2)
    atoms = Atoms("H200", positions=rng.uniform(0, 12, (200, 3)), cell=[12, 12, 12], pbc=True)
    n = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        a = neighbor_list(atoms, 3.0)
        _core.set_num_threads(2)
        b = neighbor_list(atoms, 3.0)
    finally:
        _core.set_num_threads(n)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        neighbor_list(Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]]), 2.0)
    with pytest.raises(ValueError, match="positive"):
        neighbor_list(Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]]), 0.0)
