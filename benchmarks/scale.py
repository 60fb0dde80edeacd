"""Fit time by stage and memory per rank against the number of training structures for R = 1 and 2
MPI ranks, and reference throughput for ``rhocast reference -j 2`` against ``mpirun -n 2``.

Water monomers of tests/data (small sizes: the machine is shared, so compare ratios, not seconds).
Needs mpi4py and the mpich wheel (``pip install ".[mpi]"``). Prints tables for benchmarks/RESULTS.md.

    python benchmarks/scale.py [--sizes 10 20 40] [--n-reference 12]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "water_monomers_50.xyz"
MODEL = dict(cutoff=4.0, max_radial=6, max_angular=4, n_sparse=40, regularization=1e-8, solver="cg",
             n_features=None)


def _mpirun() -> str:
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.exists() else "mpirun"


def fit_worker(dataset: str, n: int) -> None:
    """Run under mpirun: fit on the first ``n`` structures; rank 0 prints the fit report as JSON."""
    import numpy as np

    from rhocast import Dataset
    from rhocast.model import DensityModel
    from rhocast.parallel import world

    comm = world()
    t = time.perf_counter()
    m = DensityModel(**MODEL).fit(Dataset(dataset), np.arange(n), progress=False, comm=comm)
    if comm.rank == 0:
        print(json.dumps({**m.fit_report_, "wall_s": time.perf_counter() - t}))


def per_rank(report: dict, key: str, fmt: str) -> str:
    return " / ".join(format(r[key], fmt) for r in report["ranks"])


def _run(cmd: list[str]) -> tuple[str, float]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return r.stdout, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 40])
    p.add_argument("--n-reference", type=int, default=12)
    p.add_argument("--worker", nargs=2, metavar=("DATASET", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return fit_worker(args.worker[0], int(args.worker[1]))
    import ase.io

    from rhocast.structures import read_structures

    tmp = Path(tempfile.mkdtemp(prefix="rhocast-scale-"))
    waters = read_structures(DATA)
    refs = ["--basis", "sto-3g", "--auxbasis", "def2-universal-jkfit", "--grid-level", "1"]
    train = tmp / "train.xyz"
    ase.io.write(train, waters[:max(args.sizes)], format="extxyz")
    _run([sys.executable, "-m", "rhocast", "reference", str(train), "-o", str(tmp / "train"), *refs])

    print("fit (CG) by stage, seconds, and memory per rank (MB)")
    print("| N | R | wall | Psi | metrics | solve | Psi+metrics per rank | peak RSS per rank |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for ranks in (1, 2):
            out, _ = _run([_mpirun(), "-n", str(ranks), sys.executable, __file__, "--worker", str(tmp / "train"), str(n)])
            rep = json.loads(out.strip().splitlines()[-1])
            t = rep["times_s"]
            print(f"| {n} | {ranks} | {rep['wall_s']:.1f} | {t['projected kernels (Psi)']:.2f} | "
                  f"{t['overlap metrics']:.2f} | {t['solve (cg)']:.2f} | "
                  f"{per_rank(rep, 'psi_and_metrics_mb', '.1f')} | "
                  f"{per_rank(rep, 'peak_memory_mb', '.0f')} |")

    xyz = tmp / "ref.xyz"
    ase.io.write(xyz, waters[:args.n_reference], format="extxyz")
    svp = ["--basis", "def2-svp", "--auxbasis", "def2-universal-jkfit", "--grid-level", "2"]
    rhocast = [sys.executable, "-m", "rhocast", "reference", str(xyz)]
    _, pool = _run([*rhocast, "-o", str(tmp / "pool"), *svp, "-j", "2"])
    _, mpi = _run([_mpirun(), "-n", "2", *rhocast, "-o", str(tmp / "mpi"), *svp])
    print(f"\nreferences, {args.n_reference} water monomers, PBE/def2-svp, grid 2 (wall incl. start-up)")
    print("| run | wall s | structures per hour |")
    print("|---|---|---|")
    for name, wall in (("rhocast reference -j 2", pool), ("mpirun -n 2 rhocast reference", mpi)):
        print(f"| {name} | {wall:.1f} | {3600 * args.n_reference / wall:.0f} |")


if __name__ == "__main__":
    main()
