"""Shipped models load by name, from Python and the command line; a file path always wins over a name."""
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

import rhocast
from rhocast import pretrained_models
from rhocast.model import DensityModel
from test_model import REFS, SMALL, _distorted_waters


@pytest.fixture()
def shelf(tmp_path, monkeypatch):
    """A model folder holding one model called 'water-test' (the package's own folder stays untouched)."""
    rhocast.compute_references(_distorted_waters(4, 5), tmp_path / "w.h5", **REFS)
    model = DensityModel(**{**SMALL, "n_sparse": 3}).fit(rhocast.Dataset(tmp_path / "w.h5"), progress=False)
    folder = tmp_path / "shelf"
    folder.mkdir()
    model.save(folder / "water-test.h5")
    monkeypatch.setattr(pretrained_models, "FOLDER", folder)
    return model


def test_a_model_loads_by_name(shelf):
    atoms = _distorted_waters(1, 9)[0]
    assert pretrained_models.available() == ["water-test"]
    np.testing.assert_allclose(rhocast.pretrained("water-test").predict(atoms), shelf.predict(atoms), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(pretrained_models.load_model("water-test").predict(atoms), shelf.predict(atoms), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"no pretrained model 'qm9' \(available: water-test\)"):
        rhocast.pretrained("qm9")
    with pytest.raises(FileNotFoundError):
        pretrained_models.load_model("missing.h5")  # a path is never taken for a name


def _qm9_test_molecules():
    d = np.load(Path(__file__).parent / "data" / "qm9_test_3.npz")
    return [(Atoms(numbers=d[f"numbers_{k}"], positions=d[f"positions_{k}"]), d[f"coefficients_{k}"]) for k in range(3)]


def test_shipped_qm9_model_predicts_held_out_molecules_as_its_metadata_says():
    """The model in the package, by name: at most 25 MB, its metadata names training and test sets, and on
    three molecules of the common test set (never trained on) its density error is near the measured mean
    (0.33 % rel. L2 over 150; 0.18-0.42 % here) with the electron count nearly right before correction."""
    from rhocast.accuracy import coefficient_errors
    from rhocast.properties import electron_count

    assert "qm9-pbe-def2svp" in pretrained_models.available()
    assert (pretrained_models.FOLDER / "qm9-pbe-def2svp.h5").stat().st_size <= 25e6
    model = rhocast.pretrained("qm9-pbe-def2svp")
    bench = model.fit_report_["benchmark"]
    assert bench["n_test"] == 150 and "qm9_test_150" in bench["test_set"] and bench["n_train"] >= 300
    for atoms, ref in _qm9_test_molecules():
        pred = model.predict(atoms)
        err = coefficient_errors([atoms], [pred], [ref], model.auxbasis_)
        assert err.relative_l2 < 0.8, atoms.get_chemical_formula()  # the baseline alone: about 2 %
        n = atoms.numbers.sum()
        assert abs(electron_count(pred, model.auxbasis_, atoms.numbers) - n) < 0.5  # electrons, of about 70
