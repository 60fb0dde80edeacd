"""Structure sources: QM9 from qm9pack, rigid TIP3P liquid water, clusters of whole molecules."""
import numpy as np
import pytest
from ase import units
from ase.geometry import get_distances

from rhocast import sources

R_OH, ANGLE = 0.9572, 104.52


def _check_rigid_waters(positions):
    p = positions.reshape(-1, 3, 3)
    oh = np.linalg.norm(p[:, 1:] - p[:, :1], axis=2)
    np.testing.assert_allclose(oh, R_OH, atol=1e-6)
    cos = np.einsum("ij,ij->i", p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]) / R_OH**2
    np.testing.assert_allclose(np.degrees(np.arccos(cos)), ANGLE, atol=1e-4)


@pytest.fixture(scope="module")
def cells():
    return sources.liquid_water(2, n_molecules=8, seed=1, equilibration_ps=0.2, spacing_ps=0.1)


def test_liquid_water_cells(cells):
    assert len(cells) == 2
    for a in cells:
        assert a.pbc.all() and a.get_chemical_formula() == "H16O8"
        mass = 8 * 18.01528 / units.mol  # g
        assert abs(mass / (a.get_volume() * 1e-24) - 1.0) < 1e-6  # g/cm^3
        _check_rigid_waters(a.positions)  # whole, rigid molecules
        frac = a.get_scaled_positions(wrap=False)[::3]
        assert np.all((frac >= 0) & (frac < 1))  # every O inside the cell
        _, d = get_distances(a.positions[::3], cell=a.cell, pbc=True)
        d[np.diag_indices_from(d)] = np.inf
        assert d.min() > 2.3
    assert not np.allclose(cells[0].positions, cells[1].positions)


def test_liquid_water_is_reproducible(cells):
    again = sources.liquid_water(1, n_molecules=8, seed=1, equilibration_ps=0.2, spacing_ps=0.1)
    np.testing.assert_allclose(again[0].positions, cells[0].positions)


def test_water_clusters_hold_whole_molecules():
    by_count = sources.water_clusters(2, n_molecules=5, cell_molecules=8, seed=3, equilibration_ps=0.1)
    for c in by_count:
        assert not c.pbc.any() and len(c) == 15
        _check_rigid_waters(c.positions)
    by_radius = sources.water_clusters(1, n_molecules=None, radius=3.2, cell_molecules=8, seed=3,
                                        equilibration_ps=0.1)[0]
    _check_rigid_waters(by_radius.positions)
    # The cluster is exactly the molecules of its source cell whose O lies within 3.2 A (minimum image)
    # of one molecule's O: the same distances from some centre, none missing, none extra.
    cell = sources.liquid_water(1, n_molecules=8, seed=3, equilibration_ps=0.1)[0]
    o_cell = cell.positions[::3]
    o = by_radius.positions[::3]
    found = []
    for centre in o_cell:
        d = o_cell - centre
        d -= np.round(d @ np.linalg.inv(cell.cell.array)) @ cell.cell.array
        expected = np.sort(np.linalg.norm(d, axis=1)[np.linalg.norm(d, axis=1) <= 3.2])
        for x in o:
            got = np.sort(np.linalg.norm(o - x, axis=1))
            if got.size == expected.size and np.allclose(got, expected, atol=1e-8):
                found.append(got.size)
    assert found and found[0] == len(o), (found, len(o))
    with pytest.raises(ValueError, match="exactly one"):
        sources.water_clusters(1, n_molecules=None, radius=None)


def test_qm9_sampling():
    pytest.importorskip("qm9pack", reason="QM9 needs the optional qm9pack package")
    a = sources.qm9(4, seed=7)
    b = sources.qm9(4, seed=7)
    assert [m.info["qm9_index"] for m in a] == [m.info["qm9_index"] for m in b]
    small = sources.qm9(6, seed=2, max_heavy_atoms=3)
    assert all(sum(s in "CNOF" for s in m.get_chemical_symbols()) <= 3 for m in small)
    for m in a + small:
        d = m.get_all_distances()
        d[np.diag_indices_from(d)] = np.inf
        assert 0.9 < d.min() < 1.6  # covalent bonds, no clashes
        assert m.info["charge"] == 0 and m.info["spin"] == 0
