"""Input validation: every bad structure gives a clear error that names it."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from rhocast.structures import StructureError, read_structures, structure_hash, to_pyscf_mol, validate_structure


def test_valid_molecule_passes():
    validate_structure(molecule("H2O"), 0, basis="sto-3g", auxbasis="def2-universal-jkfit")


@pytest.mark.parametrize("make, message", [
    (lambda: Atoms("XH", positions=[[0, 0, 0], [1, 0, 0]]), "unknown element"),
    (lambda: Atoms("H2", positions=[[0, 0, 0], [0.05, 0, 0]]), "Angstrom apart"),
    (lambda: Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "NaN"),
    (lambda: Atoms("H2O", positions=[[0, 0, 0], [0.76, 0.58, 0], [-0.76, 0.58, 0]], info={"charge": 1}),
     "spin"),
    (lambda: Atoms("H", positions=[[0, 0, 0]]), "spin"),
    (lambda: Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], info={"charge": 2}), "electrons"),
])
def test_bad_structures_are_named(make, message):
    with pytest.raises(StructureError, match=message) as err:
        validate_structure(make(), 7)
    assert "structure 7" in str(err.value)


def test_basis_lacking_an_element():
    with pytest.raises(StructureError, match="no functions for Xe"):
        validate_structure(Atoms("Xe", positions=[[0, 0, 0]]), 0, basis="6-31g")
    with pytest.raises(StructureError, match="no functions for U"):
        validate_structure(Atoms("UO", positions=[[0, 0, 0], [1.8, 0, 0]], info={"spin": 0}), 0,
                           auxbasis="cc-pvdz-jkfit")


def test_def2_beyond_krypton_gets_its_ecp():
    """def2 bases from Rb on are made for the def2 ECPs: HI with def2-SVP (any spelling) gets iodine's
    28-electron ECP and 26 electrons; an all-electron basis for I keeps all 54; def2 up to Kr is all-electron.
    The valence count decides which spins are possible, and a def2 element beyond Kr for which PySCF had no
    ECP would be refused, naming it."""
    hi = Atoms("HI", positions=[[0, 0, 0], [0, 0, 1.61]])
    for basis in ("def2-svp", "DEF2_TZVP", {"H": "def2-svp", "I": "def2-svp"}):
        mol = to_pyscf_mol(hi, basis)
        assert mol.nelectron == 26 and mol.atom_charges().tolist() == [1, 25] and set(mol._ecp) == {"I"}
    validate_structure(hi, 4, basis="def2-svp")
    assert to_pyscf_mol(hi, {"H": "def2-svp", "I": "dzp-dkh"}).nelectron == 54
    validate_structure(hi, 4, basis={"H": "def2-svp", "I": "dzp-dkh"})
    kr = Atoms("Kr", positions=[[0, 0, 0]])
    assert to_pyscf_mol(kr, "def2-svp").nelectron == 36 and not to_pyscf_mol(kr, "def2-svp").has_ecp()
    validate_structure(kr, 0, basis="def2-svp")
    hi.info["spin"] = 1
    with pytest.raises(StructureError, match=r"26 electrons outside the ECP cores \(28 in them\)"):
        validate_structure(hi, 4, basis="def2-svp")


def test_def2_beyond_krypton_without_an_ecp_is_refused(monkeypatch):
    from rhocast import ecp

    monkeypatch.setattr(ecp, "_core_electrons_of", lambda name, symbol: 0)  # as if PySCF had no def2 ECP
    hi = Atoms("HI", positions=[[0, 0, 0], [0, 0, 1.61]])
    with pytest.raises(ValueError, match=r"element I \(Z = 53\) .*effective core potential.*'dzp-dkh'"):
        to_pyscf_mol(hi, "def2-svp")
    with pytest.raises(StructureError, match=r"structure 4 \(HI\): element I \(Z = 53\)"):
        validate_structure(hi, 4, basis="def2-svp")


def test_periodic_minimum_image_distance():
    a = Atoms("H2", positions=[[0, 0, 0], [2.95, 0, 0]], cell=[3, 3, 3], pbc=True)
    with pytest.raises(StructureError, match="apart"):
        validate_structure(a, 0)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\ncomment\nO 0 0\n")
    with pytest.raises(ValueError, match="cannot read structures"):
        read_structures(bad)
    with pytest.raises(FileNotFoundError):
        read_structures(tmp_path / "missing.xyz")


def test_hash_sees_geometry_charge_and_spin():
    a = molecule("H2O")
    b = a.copy(); b.positions[0, 0] += 1e-6
    c = a.copy(); c.info["charge"] = 1
    assert len({structure_hash(x) for x in (a, b, c)}) == 3
    assert structure_hash(a) == structure_hash(a.copy())


@pytest.mark.parametrize("value", [True, 1.0, "1"])
def test_charge_must_be_an_integer(value):
    from rhocast.structures import charge_and_spin

    a = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], info={"charge": value})
    with pytest.raises(StructureError, match="charge"):
        charge_and_spin(a)
    a.info["charge"] = np.int64(0)
    assert charge_and_spin(a) == (0, 0)
