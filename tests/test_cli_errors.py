"""Bad input to the command line: each error names the input and what would be valid, and nothing is
computed or written before it is found."""
import subprocess
import sys
from pathlib import Path

import pytest

import rhocast
from rhocast.structures import read_structures

DATA = Path(__file__).with_name("data")
REFS = dict(basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1, progress=False)


def _fails(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "rhocast", *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r.stderr


def _runs(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "rhocast", *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    """References of 4 water monomers and a tiny model fitted on them."""
    folder = tmp_path_factory.mktemp("four")
    import ase.io

    ase.io.write(folder / "four.xyz", read_structures(DATA / "water_monomers_50.xyz")[:4], format="extxyz")
    rhocast.compute_references(folder / "four.xyz", folder / "four.h5", **REFS)
    _runs("fit", folder / "four.h5", "-o", folder / "m.h5", "--n-sparse", "3", "--max-radial", "3",
          "--max-angular", "2", "--fractions", "1", "0", "0")
    return folder


@pytest.mark.parametrize("flag, value, words", [
    ("--zeta", "-1", "zeta must be a kernel exponent >= 1"),
    ("--n-sparse", "0", "n_sparse must be an integer >= 1"),
    ("--regularization", "-1", "regularization must be a value > 0"),
    ("--cutoff", "-1", "cutoff must be a radius > 0"),
    ("--max-radial", "0", "max_radial must be an integer >= 1"),
    ("--loss-metric", "l1", "loss_metric must be one of 'overlap', 'coulomb'"),
])
def test_fit_flags_are_checked_before_the_data_is_read(flag, value, words, tmp_path):
    # The dataset does not exist: the flag's error must come first.
    err = _fails("fit", tmp_path / "missing.h5", "-o", tmp_path / "m.h5", flag, value)
    assert words in err and value in err


def test_fit_without_a_validation_split_labels_its_errors(four, tmp_path):
    out = _runs("fit", four / "four.h5", "-o", tmp_path / "m.h5", "--n-sparse", "3", "--max-radial", "3",
                "--max-angular", "2", "--fractions", "1", "0", "0")
    assert "no validation split" in out and (tmp_path / "m.h5").exists()
    err = _fails("fit", four / "four.h5", "-o", tmp_path / "m2.h5", "--fractions", "1", "0", "0",
                 "--regularization", "1e-8", "1e-3")
    assert "validation split is empty" in err and not (tmp_path / "m2.h5").exists()


def test_unknown_element_symbol_is_named(tmp_path):
    (tmp_path / "bad.xyz").write_text("2\n\nXx 0 0 0\nH 0 0 0.97\n")
    assert "unknown element symbol 'Xx'" in _fails("reference", tmp_path / "bad.xyz", "-o", tmp_path / "r.h5")
    assert not (tmp_path / "r.h5").exists()


@pytest.mark.parametrize("flag, kind", [("--basis", "orbital"), ("--auxbasis", "auxiliary")])
def test_misspelt_basis_is_an_error_before_any_scf(flag, kind, tmp_path):
    (tmp_path / "h2.xyz").write_text("2\n\nH 0 0 0\nH 0 0 0.74\n")
    err = _fails("reference", tmp_path / "h2.xyz", "-o", tmp_path / "r.h5", flag, "def2-svpx")
    assert f"unknown {kind} basis 'def2-svpx'" in err
    assert not (tmp_path / "r.h5").exists()


def test_bare_charge_word_is_refused_and_flags_set_charge_and_spin(tmp_path):
    # ASE reads a bare 'charge' in the comment line as True: it must not become charge +1.
    (tmp_path / "oh.xyz").write_text("2\ncharge spin=1\nO 0 0 0\nH 0 0 0.97\n")
    r = subprocess.run([sys.executable, "-m", "rhocast", "reference", str(tmp_path / "oh.xyz"), "-o",
                        str(tmp_path / "r.h5"), "--basis", "sto-3g"], capture_output=True, text=True)
    assert r.returncode == 1 and "failed              : 1" in r.stdout
    assert "info['charge'] = True is not an integer" in r.stdout
    out = _runs("reference", tmp_path / "oh.xyz", "-o", tmp_path / "r2.h5", "--basis", "sto-3g",
                "--charge", "0", "--spin", "1")
    assert "charge 0 spin 1: 1" in out
    ds = rhocast.Dataset(tmp_path / "r2.h5")
    assert ds.atoms(0).info["charge"] == 0 and ds.atoms(0).info["spin"] == 1


def test_element_missing_from_the_model_is_named(four, tmp_path):
    (tmp_path / "nh3.xyz").write_text("4\n\nN 0 0 0\nH 0 0 1.01\nH 0.95 0 -0.34\nH -0.48 0.82 -0.34\n")
    err = _fails("predict", four / "m.h5", tmp_path / "nh3.xyz", "-o", tmp_path / "p.h5")
    assert "N" in err.split("contains")[1].split(",")[0] and "H, O" in err


def test_energies_reference_in_another_order_fails_before_the_work(four, tmp_path):
    import ase.io

    structures = read_structures(four / "four.xyz")
    ase.io.write(tmp_path / "swapped.xyz", structures[1::-1] + structures[2:], format="extxyz")
    err = _fails("energies", four / "m.h5", tmp_path / "swapped.xyz", "-o", tmp_path / "e.h5",
                 "--reference", four / "four.h5")
    assert "structure 0" in err and "same order" in err
    assert not (tmp_path / "e.h5").exists()


def test_debug_shows_the_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rhocast", "fit", str(tmp_path / "x.h5"), "-o", str(tmp_path / "m.h5"),
                        "--zeta", "0.5", "--debug"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" in r.stderr and "check_params" in r.stderr
