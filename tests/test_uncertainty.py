"""Trust indicators: an atom that is a sparse environment is fully spanned (novelty 0); environments
unlike the training data score higher; the raw electron-count error is the integral of the prediction."""
import numpy as np
import pytest
from ase.build import molecule

import rhocast
from rhocast.model import DensityModel
from rhocast.properties import electron_count
from rhocast.uncertainty import atom_novelty, structure_indicators
from test_model import REFS, SMALL, _distorted_waters


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    path = tmp_path_factory.mktemp("trust") / "w.h5"
    rhocast.compute_references(_distorted_waters(12, 3), path, **REFS)
    ds = rhocast.Dataset(path)
    return ds, DensityModel(**{**SMALL, "n_sparse": 4}).fit(ds, progress=False)


def test_training_environments_are_spanned_and_strange_ones_are_not(fitted):
    ds, model = fitted
    training = [atom_novelty(model, ds.atoms(int(i))) for i in ds.indices()]
    assert min(n.min() for n in training) < 1e-8  # the sparse environments themselves
    typical = np.median(np.concatenate(training))
    squeezed = molecule("H2O")
    squeezed.positions *= 0.75  # bonds 25 % short: no training molecule looks like this
    assert atom_novelty(model, squeezed).max() > 10 * typical, (atom_novelty(model, squeezed), typical)
    assert np.all((np.concatenate(training) >= 0) & (np.concatenate(training) <= 1))


def test_electron_count_error_is_that_of_the_raw_prediction(fitted):
    ds, model = fitted
    a = ds.atoms(0)
    c = model.predict(a)
    t = structure_indicators(model, a, c)
    assert t.electron_count_error == pytest.approx(electron_count(c, model.auxbasis_, a.numbers) - 10, abs=1e-12)
    assert t.max_novelty == pytest.approx(atom_novelty(model, a).max())


def test_step_energy_change_grows_with_the_input_error(fitted):
    """|E[rho_out] - E_HF[rho_in]| grows with an error added to the input density (from 4.1 mHa at the
    fitted reference, whose fit error in STO-3G enters the Harris-Foulkes xc term, to 4.8 and 6.5 mHa at 2 and 5 % noise)."""
    from rhocast.kohn_sham import kohn_sham_step, step_options
    from rhocast.uncertainty import step_energy_change

    ds, _ = fitted
    a, c = ds.atoms(0), ds.coefficients(0)
    noise = np.random.default_rng(0).standard_normal(c.size) * np.abs(c).mean()
    change = [step_energy_change(kohn_sham_step(a, c + eps * noise, **step_options(ds.settings)))
              for eps in (0.0, 0.02, 0.05)]
    assert change[0] < change[1] < change[2] and change[2] - change[0] > 3 * (change[1] - change[0]), change
