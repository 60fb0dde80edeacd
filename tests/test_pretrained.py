"""Shipped models load by name, from Python and the command line; a file path always wins over a name."""
import numpy as np
import pytest

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
