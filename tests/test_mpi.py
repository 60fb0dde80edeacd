"""The fit over MPI ranks against the serial fit, and shard sums of the regression against one shard.

The MPI tests launch ``mpirun -n 2`` (the mpich wheel's, beside the interpreter, or one on PATH) on a
small script; they skip with a reason only where mpi4py or mpirun is absent.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rhocast
from rhocast.model import DensityModel
from rhocast.parallel import SerialComm, deal
from rhocast.structures import read_structures

DATA = Path(__file__).with_name("data")
REFS = dict(basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1, progress=False)
SMALL = dict(cutoff=4.0, max_radial=4, max_angular=3, n_sparse=8, regularization=1e-8, n_features=None)

FIT_SCRIPT = """
import json, sys
import numpy as np
from rhocast import Dataset
from rhocast.model import DensityModel
from rhocast.parallel import world
comm = world()
params, out = json.loads(sys.argv[1]), sys.argv[2]
m = DensityModel(**params).fit(Dataset(sys.argv[3]), progress=False, comm=comm)
if comm.rank == 0:
    np.save(out, m.weights_)
    json.dump(m.fit_report_, open(out + ".json", "w"))
"""


def _mpirun() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install '.[mpi]')")
    beside = Path(sys.executable).with_name("mpirun")
    found = str(beside) if beside.exists() else shutil.which("mpirun") or shutil.which("mpiexec")
    if not found:
        pytest.skip("no mpirun/mpiexec (the mpich wheel puts one beside the interpreter)")
    return found


@pytest.fixture(scope="module")
def waters(tmp_path_factory):
    """References of 7 water monomers (an odd count: the two shards differ in size)."""
    path = tmp_path_factory.mktemp("mpi") / "waters"
    rhocast.compute_references(read_structures(DATA / "water_monomers_50.xyz")[:7], path, **REFS)
    return path


def test_deal_is_greedy_largest_first_and_deterministic():
    assert deal([1, 5, 2, 4, 3], 2) == [[0, 1, 2], [3, 4]]  # 5 | 4 | 3 to the 4 | 2 | 1 to the 5: loads 8, 7
    assert deal([3, 3, 3], 1) == [[0, 1, 2]]
    assert deal([], 3) == [[], [], []]
    with pytest.raises(ValueError, match="size"):
        deal([1.0], 0)


def test_two_shards_summed_equal_one(waters):
    """Regression shards (each with the total N, the regularisation on one) sum to the one-shard problem."""
    from rhocast import _core
    from rhocast.model import loss_metric_matrix

    ds = rhocast.Dataset(waters)
    model = DensityModel(**SMALL, solver="direct").fit(ds, progress=False)
    structures = [ds.atoms(i) for i in ds.indices()]
    coefs = [ds.coefficients(i) for i in ds.indices()]

    def shard(items, first):
        reg = _core.Regression(model.n_weights_, model.regularization)
        reg.set_total_structures(len(structures))
        for i in items:
            o = loss_metric_matrix(structures[i], model.auxbasis_, model.loss_metric, model.overlap_tol)
            reg.add_structure(o, coefs[i] - model._baseline_vector(structures[i]), *model._structure_maps(structures[i]))
        return reg, first

    one, _ = shard(range(len(structures)), True)
    parts = [shard([0, 2, 4, 6], True), shard([1, 3, 5], False)]
    v = np.random.default_rng(0).standard_normal(model.n_weights_)
    h1, h2 = (sum(r.hessian(first) for r, first in parts), one.hessian())
    assert np.allclose(sum(r.rhs() for r, _ in parts), one.rhs(), rtol=1e-12, atol=1e-14)
    assert np.abs(h1 - h2).max() <= 1e-12 * np.abs(h2).max()
    assert np.allclose(sum(r.hessian_product(v, f) for r, f in parts), one.hessian_product(v), rtol=1e-12, atol=1e-14)
    assert np.isclose(sum(r.loss(v, f) for r, f in parts), one.loss(v), rtol=1e-12)


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_mpi_fit_equals_serial(waters, tmp_path, solver):
    mpirun = _mpirun()
    # CG in floating point amplifies rounding by the condition number: at eta = 1e-8 even serial CG and
    # the direct solve differ by 1.7e-9 here; at 1e-4 (117 iterations) both solvers agree to 4e-12.
    params = {**SMALL, "solver": solver, "cg_tol": 1e-13, "max_iter": 2000,
              "regularization": 1e-8 if solver == "direct" else 1e-4}
    serial = DensityModel(**params).fit(rhocast.Dataset(waters), progress=False, comm=SerialComm())
    script = tmp_path / "fit.py"
    script.write_text(FIT_SCRIPT)
    out = str(tmp_path / "w.npy")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([mpirun, "-n", "2", sys.executable, str(script), json.dumps(params), out, str(waters)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    w = np.load(out)
    assert np.linalg.norm(w - serial.weights_) <= 1e-10 * np.linalg.norm(serial.weights_)
    report = json.load(open(out + ".json"))
    ranks = report["ranks"]  # per-rank memory, gathered to every rank
    assert [p["n_structures"] for p in ranks] in ([4, 3], [3, 4])
    assert all(p["psi_and_metrics_mb"] > 0 and p["peak_memory_mb"] > 0 for p in ranks)
    # Each rank holds only its shard: the parts are the serial part split, not copies of it.
    total = serial.fit_report_["ranks"][0]["psi_and_metrics_mb"]
    assert np.isclose(sum(p["psi_and_metrics_mb"] for p in ranks), total, rtol=1e-6)
    assert max(p["psi_and_metrics_mb"] for p in ranks) < 0.75 * total
    if solver == "cg":
        assert all(p["preconditioner_mb"] > 0 for p in ranks)


def _mpi_cli(mpirun, *args, timeout=180):
    r = subprocess.run([mpirun, "-n", "2", sys.executable, "-m", "rhocast", *args], capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r.stdout


def test_mpi_reference_equals_serial_and_resumes(waters, tmp_path):
    """Two ranks fill one dataset folder with the serial run's references; a rerun computes nothing."""
    import ase.io

    mpirun = _mpirun()
    xyz = tmp_path / "waters.xyz"
    ase.io.write(xyz, read_structures(DATA / "water_monomers_50.xyz")[:7], format="extxyz")
    args = ("reference", str(xyz), "-o", str(tmp_path / "mpi"), "--basis", "sto-3g",
            "--auxbasis", "def2-universal-jkfit", "--grid-level", "1")
    out = _mpi_cli(mpirun, *args)
    assert out.count("references ->") == 1 and "computed now        : 7" in out  # one summary, of both ranks
    writers = sorted(p.name for p in (tmp_path / "mpi" / "index").iterdir())
    assert len(writers) == 2 and all("rank" in w for w in writers), writers
    serial, mpi = rhocast.Dataset(waters), rhocast.Dataset(tmp_path / "mpi")
    assert list(mpi.indices()) == list(serial.indices()) == list(range(7))
    for i in range(7):
        assert np.allclose(mpi.coefficients(i), serial.coefficients(i), rtol=0, atol=1e-8)
    again = _mpi_cli(mpirun, *args)
    assert "computed now        : 0" in again and "already done        : 7" in again


def test_mpi_fit_command_reports_memory_per_rank_and_predict_splits(waters, tmp_path):
    """``mpirun -n 2 rhocast fit``: one summary with each rank's memory; ``predict`` under mpirun writes
    the serial predictions; ``evaluate`` under mpirun reports the serial errors."""
    import ase.io
    import h5py

    mpirun = _mpirun()
    out = _mpi_cli(mpirun, "fit", str(waters), "-o", str(tmp_path / "m.h5"), "--n-sparse", "8",
                   "--max-radial", "4", "--max-angular", "3", "--fractions", "0.7", "0.3", "0",
                   "--solver", "cg", "--n-features", "40", "--feature-sample", "12")
    assert out.count("model ->") == 1
    assert "rank 0:" in out and "rank 1:" in out
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert len(report["fit"]["ranks"]) == 2
    ranks = report["fit"]["ranks"]
    assert sum(p["n_structures"] for p in ranks) == report["n_train"]
    # Every part measured on every rank; the bounded feature sample is computed on rank 0 only.
    assert all(p[k] > 0 for p in ranks for k in ("psi_and_metrics_mb", "preconditioner_mb", "peak_memory_mb"))
    assert ranks[0]["feature_sample_mb"] > 0 and ranks[1]["feature_sample_mb"] == 0
    xyz = tmp_path / "new.xyz"
    ase.io.write(xyz, read_structures(DATA / "water_monomers_50.xyz")[40:45], format="extxyz")
    _mpi_cli(mpirun, "predict", str(tmp_path / "m.h5"), str(xyz), "-o", str(tmp_path / "mpi.h5"))
    r = subprocess.run([sys.executable, "-m", "rhocast", "predict", str(tmp_path / "m.h5"), str(xyz), "-o",
                        str(tmp_path / "serial.h5")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    with h5py.File(tmp_path / "mpi.h5") as f, h5py.File(tmp_path / "serial.h5") as g:
        assert len(f["structures"]) == len(g["structures"]) == 5
        for k in g["structures"]:
            assert np.array_equal(f[f"structures/{k}/coefficients"][()], g[f"structures/{k}/coefficients"][()])
            assert np.array_equal(f[f"structures/{k}/numbers"][()], g[f"structures/{k}/numbers"][()])
    out = _mpi_cli(mpirun, "evaluate", str(tmp_path / "m.h5"), str(waters), "--parity", str(tmp_path / "mpi.png"))
    r = subprocess.run([sys.executable, "-m", "rhocast", "evaluate", str(tmp_path / "m.h5"), str(waters), "--parity",
                        str(tmp_path / "serial.png")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    errors = [[line for line in text.splitlines() if "error" in line or "structures " in line or "median" in line]
              for text in (out, r.stdout)]
    assert errors[0] == errors[1] and len(errors[0]) >= 3, errors
    assert out.count("relative L2 error") == 1  # one report, from rank 0


REDUCE_SCRIPT = """
import json
import numpy as np
from rhocast.parallel import world
comm = world()
x = np.random.default_rng(comm.rank).standard_normal(1000) * 10.0 ** comm.rank  # rounding-sensitive sums
total = comm.allreduce_sum(x.copy())
reduced = comm.reduce_sum(x)
ok = bool(np.array_equal(reduced, total)) if comm.rank == 0 else reduced is None
everyone = comm.gather({"rank": comm.rank, "ok": ok})
if comm.rank == 0:
    print(json.dumps(everyone))
"""

COUNT_SCRIPT = """
import json, sys
from rhocast import Dataset
from rhocast.descriptors import LambdaSoap
from rhocast.model import DensityModel
from rhocast.parallel import world
comm = world()
computed = {"sample": 0, "sparse": 0}
compute = LambdaSoap.compute

def counting(self, atoms, atoms_subset=None):
    n = sum(map(len, atoms_subset)) if atoms_subset is not None else sum(len(a) for a in atoms)
    if self.max_lambda > 0:  # the full features: the selection's sample (no columns chosen yet) or sparse ones
        computed["sample" if self.selected_ is None else "sparse"] += n
    return compute(self, atoms, atoms_subset)

LambdaSoap.compute = counting
m = DensityModel(**json.loads(sys.argv[1])).fit(Dataset(sys.argv[2]), progress=False, comm=comm)
everyone = comm.gather({"rank": comm.rank, **computed, "weights0": float(m.weights_[0]),
                        "sample_mb": m.fit_report_["ranks"][comm.rank]["feature_sample_mb"]})
if comm.rank == 0:
    print(json.dumps(everyone))
"""


def _mpi_script(mpirun, tmp_path, text, *args, ranks=2):
    script = tmp_path / "script.py"
    script.write_text(text)
    r = subprocess.run([mpirun, "-n", str(ranks), sys.executable, str(script), *args], capture_output=True,
                       text=True, timeout=180, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])  # rank 0's line: every rank's result, in rank order


def test_reduce_to_rank_0_is_the_allreduce_sum_bitwise(tmp_path):
    """reduce_sum (the direct solver's Hessian) adds in rank order like allreduce_sum, on rank 0 only."""
    out = _mpi_script(_mpirun(), tmp_path, REDUCE_SCRIPT, ranks=3)
    assert [d["ok"] for d in out] == [True, True, True]


def test_features_of_the_selection_and_sparse_environments_are_computed_once(waters, tmp_path):
    """Over 2 ranks, the feature sample is computed on rank 0 only and each sparse environment on one
    rank: the totals equal the serial run's, where every rank used to compute all of them."""
    params = {**SMALL, "n_features": 20, "feature_sample": 12, "solver": "direct"}
    serial = _mpi_script(_mpirun(), tmp_path, COUNT_SCRIPT, json.dumps(params), str(waters), ranks=1)[0]
    out = _mpi_script(_mpirun(), tmp_path, COUNT_SCRIPT, json.dumps(params), str(waters))
    assert serial["sample"] == 12 and [d["sample"] for d in out] == [12, 0]
    assert [d["sample_mb"] > 0 for d in out] == [True, False]
    assert sum(d["sparse"] for d in out) == serial["sparse"] > 0 and all(d["sparse"] > 0 for d in out)
    assert all(d["weights0"] == out[0]["weights0"] for d in out)
    assert abs(out[0]["weights0"] - serial["weights0"]) <= 1e-10 * abs(serial["weights0"])
