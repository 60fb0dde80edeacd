"""The command line as a new user runs it, and learning on small water sets shipped in tests/data."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rhocast
from rhocast.accuracy import density_errors
from rhocast.model import DensityModel
from rhocast.structures import read_structures

REFS = dict(basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1, progress=False)
DATA = Path(__file__).with_name("data")
MONOMERS = DATA / "water_monomers_50.xyz"
SMALL = dict(cutoff=4.0, max_radial=4, max_angular=3, n_sparse=10, regularization=1e-8)


@pytest.fixture(scope="module")
def monomers(tmp_path_factory):
    """References of the first 45 monomers; the last 5 are held out (``held_out``)."""
    path = tmp_path_factory.mktemp("monomers") / "mon.h5"
    rhocast.compute_references(read_structures(MONOMERS)[:45], path, **REFS)
    return path


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("held_out")
    import ase.io

    ase.io.write(folder / "held_out.xyz", read_structures(MONOMERS)[45:], format="extxyz")
    rhocast.compute_references(folder / "held_out.xyz", folder / "held_out.h5", **REFS)
    return folder / "held_out.xyz", folder / "held_out.h5"


def test_validation_error_falls_with_training_size(tmp_path):
    # These monomers are rotations of one geometry with 0.03 Angstrom distortions.
    # Hartree-Fock has no exchange-correlation grid, whose lack of rotational invariance (3e-3 % at
    # grid level 1) would otherwise hide the learning.
    path = tmp_path / "hf.h5"
    rhocast.compute_references(read_structures(MONOMERS)[:45], path, **{**REFS, "xc": "hf"})
    ds = rhocast.Dataset(path)
    train, val, _ = ds.split(seed=0, fractions=(0.75, 0.25, 0.0))
    errors = []
    for n in (3, 10, len(train)):
        model = DensityModel(**{**SMALL, "regularization": 1e-10}).fit(ds, train[:n], progress=False)
        errors.append(density_errors(model, ds, val).baseline_relative)
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.3 and errors[2] < errors[0] / 3, errors  # percent


def _run(*args):
    r = subprocess.run([sys.executable, "-m", "rhocast", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_fit_predict_evaluate_energies(monomers, held_out, tmp_path):
    model = tmp_path / "m.h5"
    out = _run("fit", str(monomers), "-o", str(model), "--n-sparse", "8", "--max-radial", "4", "--max-angular", "3",
               "--train-sizes", "5", "--fractions", "0.6", "0.2", "0.2")
    assert "validation" in out and model.exists()
    assert (tmp_path / "m.learning_curve.png").exists() and (tmp_path / "m.report.json").exists()
    _run("predict", str(model), str(DATA / "water_dimers_3.xyz"), "-o", str(tmp_path / "p.h5"))
    import h5py

    with h5py.File(tmp_path / "p.h5") as f:
        n_el = [g.attrs["n_electrons"] for g in f["structures"].values()]
    assert len(n_el) == 3 and np.allclose(n_el, 20, atol=0.2)  # a monomer model transfers to dimers
    out = _run("evaluate", str(model), str(monomers))
    assert "relative L2 error" in out and "left out" in out
    # Training structures are recognised by content, not by the dataset's path: a moved copy is the same data.
    import shutil

    moved = shutil.copytree(monomers, tmp_path / "moved")
    n_left_out = out.split(" structures of")[0].split()[-1]
    assert f"{n_left_out} structures of {moved} trained the model" in _run("evaluate", str(model), str(moved))
    # Energies of monomers the model has never seen (the 5 held out of the 45-structure dataset).
    xyz, refs = held_out
    out = _run("energies", str(model), str(xyz), "-o", str(tmp_path / "e.h5"), "--reference", str(refs))
    total = float(out.split("total")[1].split()[0])
    assert total < 1.0  # meV/atom
    assert (tmp_path / "e.errors.png").exists()


def test_fit_keeps_the_regularization_with_the_lowest_validation_error(monomers, tmp_path):
    import json

    model = tmp_path / "m.h5"
    out = _run("fit", str(monomers), "-o", str(model), "--n-sparse", "8", "--max-radial", "4", "--max-angular", "3",
               "--regularization", "1e2", "1e-8", "--fractions", "0.6", "0.2", "0.2")
    scan = json.loads((tmp_path / "m.report.json").read_text())["regularization_scan"]
    assert [s[0] for s in scan] == [1e2, 1e-8]
    assert scan[1][1] < scan[0][1]  # eta = 100 flattens the model towards the baseline
    assert DensityModel.load(model).regularization == 1e-8 and "kept regularization 1e-08" in out


def test_bad_model_file_gives_one_line_error(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    r = subprocess.run([sys.executable, "-m", "rhocast", "predict", str(bad), "x.xyz", "-o", str(tmp_path / "o.h5")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "error: cannot read" in r.stderr


def test_fit_help_lists_every_hyper_parameter(capsys):
    """``rhocast fit --help`` prints (a '%' in a description once made argparse fail) and names each one."""
    from rhocast.cli import main
    from rhocast.model import PARAMETERS

    with pytest.raises(SystemExit) as done:
        main(["fit", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all("--" + name.replace("_", "-") in out for name in PARAMETERS)
    assert "0.171 %" in out
