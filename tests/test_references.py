"""Reference densities: the fit against an independent PySCF computation, conventions, resumability."""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from pyscf import df, dft, gto

import rhocast
from rhocast import references
from rhocast.basis import AuxiliaryBasis
from rhocast.dataset import Dataset
from equivariance import random_rotation, wigner_d_real

FAST = dict(basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1, progress=False)


def _water(shift=0.0):
    a = molecule("H2O")
    a.positions[1, 0] += shift
    return a


def test_coefficients_equal_independent_pyscf_fit(tmp_path):
    a = molecule("NH3")
    rhocast.compute_references([a], tmp_path / "r.h5", conv_tol=1e-12, **FAST)
    c = Dataset(tmp_path / "r.h5").coefficients(0)
    # Independent: plain PySCF SCF, full three-index tensor, dense solve, p shells (x,y,z)->(y,z,x).
    mol = gto.M(atom=[(s, p) for s, p in zip(a.get_chemical_symbols(), a.positions)], basis="sto-3g")
    mf = dft.RKS(mol, xc="pbe"); mf.grids.level = 1; mf.conv_tol = 1e-12; mf.kernel()
    aux = df.addons.make_auxmol(mol, "def2-universal-jkfit")
    b = np.einsum("ijP,ij->P", df.incore.aux_e2(mol, aux, "int3c2e"), mf.make_rdm1())
    c_pyscf = np.linalg.solve(aux.intor("int2c2e"), b)
    order = []
    for ib in range(aux.nbas):
        start, l = aux.ao_loc[ib], aux.bas_angular(ib)
        order += [start + 1, start + 2, start] if l == 1 else list(range(start, start + 2 * l + 1))
    np.testing.assert_allclose(c, c_pyscf[order], atol=1e-8)


@pytest.mark.parametrize("name, xc, grid_level, tol", [("H2O", "hf", 1, 1e-8), ("NH3", "hf", 1, 1e-8),
                                                       ("NH3", "pbe", 4, 1e-6)])
def test_coefficients_rotate_with_wigner_d(name, xc, grid_level, tol):
    settings = references.ReferenceSettings(xc=xc, basis="sto-3g", auxbasis="def2-universal-jkfit",
                                            grid_level=grid_level, conv_tol=1e-12).resolved()
    a = molecule(name)
    a.positions -= a.positions.mean(axis=0)
    c0 = references.reference_record(a, settings)["coefficients"]
    basis = AuxiliaryBasis(settings.auxbasis, a.numbers)
    for seed in (1, 2):
        rot = random_rotation(seed)
        b = a.copy(); b.positions = a.positions @ rot.T
        c1 = references.reference_record(b, settings)["coefficients"]
        off = 0
        for z in a.numbers:
            for shell in basis.shells[z]:
                n = 2 * shell.l + 1
                np.testing.assert_allclose(c1[off:off + n], wigner_d_real(shell.l, rot) @ c0[off:off + n],
                                           atol=tol)
                off += n
        assert off == c0.size


def test_constrained_fit_has_exact_electron_count(tmp_path):
    for metric in ("coulomb", "overlap"):
        rhocast.compute_references([molecule("H2O")], tmp_path / f"{metric}.h5", metric=metric,
                                   constrain_electrons=True, **FAST)
        floor = Dataset(tmp_path / f"{metric}.h5").floor(0)
        assert abs(floor["n_electrons_fit"] - 10) < 1e-8


def test_larger_auxiliary_basis_has_smaller_floor(tmp_path):
    floors = {}
    for aux in ("cc-pvdz-jkfit", "cc-pvqz-jkfit"):  # the same family, 70 and 106 functions on O
        rhocast.compute_references([molecule("H2O")], tmp_path / f"{aux}.h5", basis="def2-svp", auxbasis=aux,
                                   grid_level=2, progress=False)
        floors[aux] = Dataset(tmp_path / f"{aux}.h5").floor(0)
    small, large = floors["cc-pvdz-jkfit"], floors["cc-pvqz-jkfit"]
    assert large["relative_l2"] < small["relative_l2"] and large["nmae"] < small["nmae"], floors


def test_resume_recomputes_nothing(tmp_path, monkeypatch):
    calls = []
    real = references.run_scf
    monkeypatch.setattr(references, "run_scf", lambda *args: calls.append(1) or real(*args))
    mols = [_water(0.01 * k) for k in range(4)]
    rhocast.compute_references(mols[:2], tmp_path / "r.h5", **FAST)  # "interrupted" after two
    assert len(calls) == 2
    first = Dataset(tmp_path / "r.h5").coefficients(1)
    summary = rhocast.compute_references(mols, tmp_path / "r.h5", **FAST)
    assert len(calls) == 4 and summary.skipped == [0, 1] and summary.computed == [2, 3]
    ds = Dataset(tmp_path / "r.h5")
    assert len(ds) == 4
    np.testing.assert_array_equal(ds.coefficients(1), first)
    # a different input at a finished position, or other settings, are refused
    with pytest.raises(ValueError, match="another input"):
        rhocast.compute_references([_water(0.5)], tmp_path / "r.h5", **FAST)
    with pytest.raises(ValueError, match="other settings"):
        rhocast.compute_references(mols, tmp_path / "r.h5", **{**FAST, "grid_level": 2})


def test_sigkill_leaves_finished_structures_intact(tmp_path):
    xyz = tmp_path / "in.xyz"
    import ase.io
    ase.io.write(xyz, [_water(0.02 * k) for k in range(30)])
    out = tmp_path / "r.h5"
    cmd = [sys.executable, "-m", "rhocast", "reference", str(xyz), "-o", str(out), "--basis", "sto-3g",
           "--auxbasis", "def2-universal-jkfit", "--grid-level", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if out.exists():
            try:
                if len(Dataset(out)) >= 3:
                    break
            except ValueError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ds = Dataset(out)  # readable after SIGKILL
    n = len(ds)
    assert 3 <= n < 30
    done = [ds.coefficients(i) for i in range(n)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    ds = Dataset(out)
    assert len(ds) == 30
    for i in range(n):
        np.testing.assert_array_equal(ds.coefficients(i), done[i])


def test_bad_inputs_are_reported_and_the_others_computed(tmp_path):
    good = molecule("H2O")
    close = Atoms("H2", positions=[[0, 0, 0], [0.05, 0, 0]])
    nan = Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]])
    odd = Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]])  # 9 electrons with spin 0
    lacking = Atoms("XeH", positions=[[0, 0, 0], [1.6, 0, 0]])  # sto-3g has Xe; the jkfit here does not
    summary = rhocast.compute_references([close, good, nan, odd, lacking, good.copy()], tmp_path / "r.h5",
                                         **{**FAST, "auxbasis": "cc-pvdz-jkfit"})
    assert summary.computed == [1, 5]
    assert set(summary.failed) == {0, 2, 3, 4}
    assert "structure 0 (H2)" in summary.failed[0] and "apart" in summary.failed[0]
    assert "NaN" in summary.failed[2] and "spin" in summary.failed[3] and "Xe" in summary.failed[4]
    ds = Dataset(tmp_path / "r.h5")
    assert list(ds.input_index) == [1, 5]


def test_open_shell_uses_uks(tmp_path):
    oh = Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]], info={"spin": 1})
    rhocast.compute_references([oh], tmp_path / "r.h5", **FAST)
    ds = Dataset(tmp_path / "r.h5")
    assert ds.converged[0] and ds.info(0)["spin"] == 1
    assert abs(ds.floor(0)["n_electrons_fit"] - 9) < 0.05


def test_mixed_and_partially_periodic_inputs_are_refused(tmp_path):
    cell = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[5, 5, 5], pbc=True)
    molecule = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    with pytest.raises(ValueError, match="mixes molecules and periodic cells"):
        rhocast.compute_references([cell, molecule], tmp_path / "r.h5", progress=False)
    slab = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[5, 5, 5], pbc=[True, True, False])
    with pytest.raises(ValueError, match="some directions only"):
        rhocast.compute_references([slab], tmp_path / "r.h5", progress=False)
    with pytest.raises(ValueError, match="overlap metric"):
        rhocast.compute_references([cell], tmp_path / "r.h5", metric="coulomb", progress=False)
    with pytest.raises(ValueError, match="periodic cells only"):
        rhocast.compute_references([molecule], tmp_path / "r.h5", ke_cutoff=100.0, progress=False)
    assert not (tmp_path / "r.h5").exists()


def test_pseudopotential_lacking_an_element_is_reported(tmp_path):
    cell = Atoms("H2Ra", positions=[[0, 0, 0], [0.74, 0, 0], [3.0, 0, 0]], cell=[6, 6, 6], pbc=True)
    one_s = [[0, [1.0, 1.0]]]  # the orbital and auxiliary bases cover Ra; GTH-PBE does not
    summary = rhocast.compute_references([cell], tmp_path / "r.h5", basis={"H": "gth-szv", "Ra": one_s},
                                         pseudo="gth-pbe", auxbasis={"H": "etb:gth-szv", "Ra": one_s},
                                         progress=False)
    assert summary.failed[0].endswith("pseudopotential 'gth-pbe' has no parameters for Ra"), summary.failed


def test_cli_reports_errors_in_one_line(tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("garbage\n")
    r = subprocess.run([sys.executable, "-m", "rhocast", "reference", str(bad), "-o", str(tmp_path / "o.h5")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("rhocast reference: error: cannot read structures")
    assert not (tmp_path / "o.h5").exists()


def test_append_with_other_code_versions_warns(tmp_path):
    import json

    out = tmp_path / "r"
    rhocast.compute_references([_water(0.0)], out, **FAST)
    meta = json.loads((out / "dataset.json").read_text())
    meta["pyscf_version"] = "0.0-other"
    (out / "dataset.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="other versions .*pyscf_version.*0.0-other"):
        rhocast.compute_references([_water(0.0), _water(0.05)], out, **FAST)


def test_programming_error_in_a_worker_is_logged_with_its_traceback(tmp_path, monkeypatch):
    def broken(atoms, settings, guess_model=None):
        raise ZeroDivisionError("a bug, not an SCF failure")

    monkeypatch.setattr(references, "reference_record", broken)
    summary = rhocast.compute_references([_water(0.0)], tmp_path / "r", **FAST)
    assert "ZeroDivisionError: a bug" in summary.failed[0]
    log = open(summary.error_log).read()
    assert "Traceback" in log and "in broken" in log


def test_sigterm_stops_the_workers_of_a_parallel_run(tmp_path):
    import ase.io

    xyz = tmp_path / "in.xyz"
    ase.io.write(xyz, [_water(0.02 * k) for k in range(40)])
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "rhocast", "reference", str(xyz), "-o", str(out), "-j", "2",
                             "--basis", "sto-3g", "--auxbasis", "def2-universal-jkfit", "--grid-level", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    workers = []
    while time.time() < deadline and not (workers and out.exists() and any((out / "structures").glob("*.h5"))):
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        workers = [int(p) for p in children]
        time.sleep(0.1)
    assert len(workers) >= 2, "the pool did not start"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0
    time.sleep(0.5)
    alive = [p for p in workers if subprocess.run(["ps", "-o", "stat=", "-p", str(p)], capture_output=True,
                                                  text=True).stdout.strip() not in ("", "Z")]
    assert not alive, f"workers {alive} outlived the SIGTERM of their parent"
    assert len(Dataset(out)) < 40  # it stopped, and what it finished is readable
