"""Block-sparse overlap integrals against PySCF (molecules) and pyscf.pbc (lattice sums)."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.units import Bohr
from pyscf import gto
from pyscf.pbc import gto as pbcgto

from rhocast import _core
from rhocast.basis import AuxiliaryBasis, to_canonical
from rhocast.overlap import overlap_matrix
from rhocast.sparse import to_scipy
from rhocast.structures import to_pyscf_mol

ETB = {el: gto.etbs([(l, 3, 0.3, 2.5) for l in range(7)]) for el in ("O", "H")}  # l = 0..6


def _canonical(mol, s):
    return to_canonical(mol, to_canonical(mol, s, 0), 1)


@pytest.mark.parametrize("spec, atoms", [
    ("def2-universal-jkfit", molecule("CH3CH2OH")),  # l up to 4 (C, O), 3 (H)
    ("def2-universal-jkfit", Atoms("SH2", positions=[[0, 0, 0], [1.34, 0, 0], [-0.1, 1.33, 0]])),  # S: l=5
    (ETB, molecule("H2O")),  # even-tempered, l up to 6
])
def test_molecule_equals_pyscf(spec, atoms):
    basis = AuxiliaryBasis(spec, atoms.numbers)
    aux = basis.make_auxmol(to_pyscf_mol(atoms, "sto-3g"))
    assert basis.max_l == max(aux.bas_angular(i) for i in range(aux.nbas))
    reference = _canonical(aux, aux.intor("int1e_ovlp"))
    s = overlap_matrix(atoms, basis, tol=1e-14)
    np.testing.assert_allclose(s.to_dense(), reference, atol=1e-12)
    dense = s.to_dense()
    np.testing.assert_array_equal(dense, dense.T)
    assert np.linalg.eigvalsh(dense).min() > 0
    np.testing.assert_allclose(to_scipy(s).toarray(), dense)


def test_screening_drops_only_small_blocks():
    atoms = Atoms("OH2" * 6, positions=np.concatenate(
        [molecule("H2O").positions + [6.0 * k, 0, 0] for k in range(6)]))
    basis = AuxiliaryBasis("def2-universal-jkfit", atoms.numbers)
    full = overlap_matrix(atoms, basis, tol=1e-30).to_dense()
    for tol in (1e-6, 1e-10):
        s = overlap_matrix(atoms, basis, tol=tol)
        assert s.n_blocks < len(atoms) * (len(atoms) + 1) // 2  # something was screened
        diff = np.abs(s.to_dense() - full)
        assert diff.max() < tol
        off = np.asarray(s.offsets)
        for i in range(len(atoms)):
            for j in range(i, len(atoms)):
                if not s.has_block(i, j):
                    assert np.abs(full[off[i]:off[i + 1], off[j]:off[j + 1]]).max() < tol


def _pbc_reference(atoms, spec):
    cell = pbcgto.Cell()
    cell.atom = [(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions / Bohr)]
    cell.a = atoms.cell.array / Bohr
    cell.unit = "Bohr"
    cell.basis = spec
    cell.precision = 1e-16
    cell.spin = int(sum(atoms.numbers)) % 2
    cell.build(verbose=0)
    return _canonical(cell, cell.pbc_intor("int1e_ovlp", hermi=1))


@pytest.mark.parametrize("cell", [
    np.diag([6.0, 7.0, 8.0]),                             # orthorhombic
    np.array([[6.0, 0, 0], [2.5, 6.5, 0], [1.5, -2.0, 7.0]]),  # triclinic, strongly skewed
    np.diag([2.2, 2.2, 2.2]),                             # many overlapping images
])
def test_periodic_equals_pyscf_pbc(cell):
    spec = {"O": gto.etbs([(0, 3, 0.15, 3.0), (1, 2, 0.25, 3.0), (2, 1, 0.4, 2.0)]),
            "H": gto.etbs([(0, 2, 0.2, 3.0), (1, 1, 0.5, 2.0)])}
    atoms = Atoms("OH2", positions=[[0.3, 0.2, 0.1], [1.0, 0.9, 0.4], [-0.6, 0.8, 0.5]], cell=cell, pbc=True)
    basis = AuxiliaryBasis(spec, atoms.numbers)
    s = overlap_matrix(atoms, basis, tol=1e-14).to_dense()
    np.testing.assert_allclose(s, _pbc_reference(atoms, spec), atol=1e-11)
    assert np.linalg.eigvalsh(s).min() > 0


def test_serial_equals_parallel():
    atoms = molecule("CH3CH2OH")
    basis = AuxiliaryBasis("def2-universal-jkfit", atoms.numbers)
    n = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        serial = overlap_matrix(atoms, basis).to_dense()
        _core.set_num_threads(2)
        parallel = overlap_matrix(atoms, basis).to_dense()
    finally:
        _core.set_num_threads(n)
    np.testing.assert_array_equal(serial, parallel)


def test_partial_pbc_is_refused():
    atoms = molecule("H2O")
    atoms.cell = [5, 5, 5]
    atoms.pbc = [True, True, False]
    with pytest.raises(ValueError, match="partial pbc"):
        overlap_matrix(atoms, AuxiliaryBasis("def2-universal-jkfit", atoms.numbers))


@pytest.mark.parametrize("fill", [1.0, 0.0])  # every S sparse (LU) / every S dense (Cholesky)
def test_overlap_solver_inverts_the_overlap(fill, monkeypatch):
    import rhocast.overlap

    monkeypatch.setattr(rhocast.overlap, "DENSE_FILL", fill)
    cell = molecule("H2O", vacuum=2.0, pbc=True)
    basis = AuxiliaryBasis("def2-universal-jfit", cell.numbers)
    s = to_scipy(overlap_matrix(cell, basis)).toarray()
    v = np.random.default_rng(0).normal(size=len(s))
    x = rhocast.overlap.overlap_solver(cell, basis)(v)
    assert np.abs(s @ x - v).max() < 1e-8 * np.abs(v).max()
    assert np.abs(x).max() > 10 * np.abs(v).max()  # not the identity: S is far from it
