"""The demo pipeline end to end, reduced: learning, energies and the SCF guess must be physical."""
from rhocast.demo import run_demo


def test_demo_pipeline(tmp_path):
    r = run_demo(str(tmp_path / "demo"), n_structures=22, n_test=4, train_sizes=(4, 16), n_scf_guess=2,
                 progress=False)
    (n1, e1, b1), (n2, e2, b2) = r["learning_curve"]
    assert e2 < e1 and b2 < b1  # more data, smaller error
    assert r["relative_l2"] < r["floor_relative_l2"]  # the model error is far below the fitting floor here
    assert r["energy_mae_ks_mev_atom"] < 5.0
    assert r["scf_cycles_model"] < r["scf_cycles_minao"]
    for name in ("learning_curve.png", "parity.png", "density_error_slice.png", "model.h5", "references"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
