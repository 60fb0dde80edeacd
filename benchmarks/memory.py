"""Memory levers of the fit on QM9 molecules with 9 heavy atoms: the RKHS cap per (species, lambda)
(``max_rkhs``) and float32 storage of Psi (``psi_precision``). For each setting: fit time, the fit's parts
(Psi, metrics, preconditioner), peak RSS and the validation errors; then the memory formula per rank
checked against the measured parts and extrapolated to 1,000 and 20,000 molecules.

Training pool: the dataset folder $RHOCAST_BENCH_CACHE/qm9_train (default ~/.cache/rhocast-bench; built
by benchmarks/qm9.py, opened read-only): the first ``--n-train`` molecules with 9 heavy atoms at positions
>= 200 train, positions 0-49 validate. Each fit runs in its own process, so its peak RSS is its own.

    python benchmarks/memory.py --n-train 50 --n-sparse 300 1000 --caps none 500 250
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("RHOCAST_BENCH_CACHE", "~/.cache/rhocast-bench")).expanduser()
POOL = CACHE / "qm9_train"
FIRST_TRAINING_POSITION, N_VALIDATION = 200, 50
# The descriptor and solver of benchmarks/qm9.py; eta 1e-3 (its usual choice for QM9).
MODEL = dict(cutoff=4.0, max_radial=6, max_angular=4, n_features=500, regularization=1e-3, solver="cg",
             cg_tol=1e-6)
# Extrapolation: QM9 molecules with 9 heavy atoms (composition: the mean of the training molecules).
TARGETS = (1000, 20000)


def training_positions(ds, n: int) -> list[int]:
    """The first ``n`` dataset positions >= 200 whose molecule has exactly 9 heavy atoms."""
    out = []
    for i in ds.indices()[FIRST_TRAINING_POSITION:]:
        if np.count_nonzero(ds.atoms(int(i)).numbers > 1) == 9:
            out.append(int(i))
            if len(out) == n:
                return out
    raise SystemExit(f"{POOL} has only {len(out)} molecules with 9 heavy atoms at positions >= "
                     f"{FIRST_TRAINING_POSITION}; build more with benchmarks/qm9.py --build-only")


def fit_worker(setting: dict, n_train: int) -> None:
    """One fit (run in its own process): prints one JSON line with what the parent tabulates."""
    from rhocast import Dataset
    from rhocast.accuracy import density_errors
    from rhocast.model import DensityModel

    ds = Dataset(POOL)
    train = training_positions(ds, n_train)
    validation = [int(i) for i in ds.indices()[:N_VALIDATION]]
    t = time.perf_counter()
    model = DensityModel(**MODEL, **setting).fit(ds, train, progress=False)
    fit_s = time.perf_counter() - t
    err = density_errors(model, ds, validation)
    structures = [ds.atoms(i) for i in train]
    species_atoms = {int(z): int(sum(np.count_nonzero(a.numbers == z) for a in structures)) for z in model.species_}
    channels = {f"{z},{lam}": sum(1 for l, _ in model.auxbasis_.radial_channels(z) if l == lam)
                for z, lam in model.projectors_}
    print(json.dumps({"setting": setting, "fit_s": fit_s, "report": model.fit_report_,
                      "rel_l2": err.relative_l2, "baseline_rel": err.baseline_relative,
                      "dims": {f"{z},{lam}": int(v.shape[1]) for (z, lam), v in model.projectors_.items()},
                      "sparse": {str(z): int(next(iter(f.values())).shape[0]) for z, f in model.sparse_features_.items()},
                      "channels": channels, "species_atoms": species_atoms, "n_molecules": len(train),
                      "n_weights": int(model.n_weights_)}))


def psi_bytes(species_atoms: dict, dims: dict, value_bytes: int) -> float:
    """Psi: value_bytes x sum over atoms of sum_lambda (2 lambda + 1) D(Z, lambda) (one (2 lambda + 1) x D
    block per atom and lambda, shared by the radial channels)."""
    return value_bytes * sum(species_atoms.get(z, 0) * (2 * lam + 1) * d for (z, lam), d in dims.items())


def preconditioner_bytes(dims: dict, channels: dict, max_block: int = 4000) -> float:
    """Block-Jacobi blocks (DensityModel._preconditioner_blocks): the radial channels of one (Z, lambda)
    together, up to max_block weights a block: 8 B x sum of block sizes squared (on every rank)."""
    total = 0
    for key, d in dims.items():
        per_block = max(1, max_block // d) if d else 1
        full, rest = divmod(channels[key], per_block)
        total += full * (per_block * d) ** 2 + (rest * d) ** 2
    return 8.0 * total


def hessian_bytes(dims: dict, channels: dict) -> float:
    """The direct solver's Hessian: 8 B x n_weights^2 (one copy; the assembly holds one more per thread)."""
    return 8.0 * sum(channels[k] * d for k, d in dims.items()) ** 2


def projector_bytes(sparse: dict, dims: dict) -> float:
    """The projectors V (M_Z (2 lambda + 1) x D per (Z, lambda)), held twice: by the model and by the
    compiled predictor that builds Psi."""
    return 16.0 * sum(sparse[z] * (2 * lam + 1) * d for (z, lam), d in dims.items())


def eigh_bytes(sparse: dict, dims: dict) -> float:
    """Peak of the projectors' set-up: K_MM of the largest (Z, lambda), its symmetrised copy, LAPACK's
    eigenvectors and workspace: about 5 x 8 B (M_Z (2 lambda + 1))^2."""
    return 40.0 * max((sparse[z] * (2 * lam + 1)) ** 2 for z, lam in dims)


def _keys(d: dict) -> dict:
    return {tuple(int(x) for x in k.split(",")): v for k, v in d.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=50)
    p.add_argument("--n-sparse", type=int, nargs="+", default=[300, 1000])
    p.add_argument("--caps", nargs="+", default=["none", "500", "250"], help="max_rkhs values ('none': no cap)")
    p.add_argument("--float32-at", nargs="+", default=["none", "250"],
                   help="caps at which the float32 fit is run too (every n_sparse)")
    p.add_argument("--runs", help="rebuild the tables from the JSON lines a previous run printed (no fits)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return fit_worker(json.loads(args.worker), args.n_train)
    from _record import markdown_table, record

    cap = lambda c: None if c == "none" else int(c)  # noqa: E731
    settings = [dict(n_sparse=m, max_rkhs=cap(c), psi_precision=prec) for m in args.n_sparse for c in args.caps
                for prec in (["float64", "float32"] if c in args.float32_at else ["float64"])]
    runs = [json.loads(line) for line in Path(args.runs).read_text().splitlines()
            if line.startswith("{")] if args.runs else []
    for s in settings if not args.runs else []:
        r = subprocess.run([sys.executable, __file__, "--n-train", str(args.n_train), "--worker", json.dumps(s)],
                           capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if r.returncode:
            raise RuntimeError(f"fit {s} failed:\n{r.stderr[-3000:]}")
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), flush=True)  # the raw run: the tables can be rebuilt from these lines

    rows, checks = [], []
    for run in runs:
        s, rank = run["setting"], run["report"]["ranks"][0]
        dims, channels, atoms = _keys(run["dims"]), _keys(run["channels"]), _keys_species(run["species_atoms"])
        d_max = max(dims.values())
        rows.append([s["n_sparse"], "/".join(str(run["sparse"][k]) for k in sorted(run["sparse"], key=int)),
                     s["max_rkhs"] or "none", s["psi_precision"], d_max, run["n_weights"], run["report"]["cg_iterations"],
                     round(run["fit_s"], 1), round(rank["psi_mb"], 1), round(rank["metrics_mb"], 1),
                     round(rank["preconditioner_mb"], 1), round(rank["peak_memory_mb"]),
                     round(run["rel_l2"], 3), round(run["baseline_rel"], 2)])
        value = 4 if s["psi_precision"] == "float32" else 8
        checks.append([s["n_sparse"], s["max_rkhs"] or "none", s["psi_precision"],
                       round(psi_bytes(atoms, dims, value) / 1e6, 2), round(rank["psi_mb"], 2),
                       round(preconditioner_bytes(dims, channels) / 1e6, 1), round(rank["preconditioner_mb"], 1)])
    species = ", ".join(f"{z}" for z in sorted(_keys_species(runs[0]["species_atoms"])))
    body = (f"Fits on {args.n_train} QM9 molecules with 9 heavy atoms (pool positions >= {FIRST_TRAINING_POSITION}), "
            f"validation on pool positions 0-{N_VALIDATION - 1}; PBE/def2-SVP references, def2-universal-jkfit, "
            f"cutoff 4 A, 6 radial, l <= 4, n_features 500, eta 1e-3, CG to 1e-6, one thread. n_sparse is capped by "
            f"the atoms of each species in the training set (column M_Z: M per species {species}).\n\n")
    body += markdown_table(["n_sparse", "M_Z", "max_rkhs", "Psi dtype", "D max", "n_weights", "CG it", "fit s", "Psi MB",
                            "metrics MB", "precond MB", "peak RSS MB", "val rel L2 %", "val baseline-rel %"], rows)
    body += "\n\nMemory formula against the measured parts (MB):\n\n"
    body += markdown_table(["n_sparse", "max_rkhs", "Psi dtype", "Psi formula", "Psi measured", "precond formula",
                            "precond measured"], checks)
    body += "\n\n" + extrapolation(runs, markdown_table)
    record("Memory levers: RKHS cap and float32 Psi (QM9, 9 heavy atoms; issue 15)", body)


def _keys_species(d: dict) -> dict:
    return {int(k): v for k, v in d.items()}


def extrapolation(runs: list[dict], markdown_table) -> str:
    """Memory per rank (GB) at 1,000 and 20,000 molecules, M = 1000 per species (all atoms of a rarer
    species), from the formula: the measured composition and metrics per molecule, D(Z, lambda) =
    min(cap, the fraction of M (2 lambda + 1) kept by the eigenvalue cut in the largest uncapped run)."""
    base = max((r for r in runs if r["setting"]["max_rkhs"] is None),
               key=lambda r: r["setting"]["n_sparse"])
    rank = base["report"]["ranks"][0]
    n_mol = base["n_molecules"]
    per_molecule = {z: a / n_mol for z, a in _keys_species(base["species_atoms"]).items()}
    metrics_per_molecule = rank["metrics_mb"] / n_mol
    sparse = _keys_species(base["sparse"])
    kept = {k: d / (sparse[k[0]] * (2 * k[1] + 1)) for k, d in _keys(base["dims"]).items()}
    channels = _keys(base["channels"])
    rows = []
    for cap in (None, 500, 250):
        for value, name in ((8, "float64"), (4, "float32")):
            for n in TARGETS:
                # M_Z = 1000, or all the atoms of a rare species (F: ~0.03 per molecule).
                dims = {k: int(min(cap or 10**9, round(f * min(1000, per_molecule[k[0]] * n) * (2 * k[1] + 1))))
                        for k, f in kept.items()}
                pre = preconditioner_bytes(dims, channels) / 1e9
                n_w = sum(channels[k] * d for k, d in dims.items())
                sparse_n = {z: min(1000, per_molecule[z] * n) for z in per_molecule}
                eigh = eigh_bytes(sparse_n, dims) / 1e9
                proj = projector_bytes(sparse_n, dims) / 1e9
                for ranks in (1, 8):
                    atoms = {z: per_molecule[z] * n / ranks for z in per_molecule}
                    psi = psi_bytes(atoms, dims, value) / 1e9
                    metrics = metrics_per_molecule * n / ranks / 1e3
                    rows.append([cap or "none", name, n, ranks, round(psi, 1), round(metrics, 1), round(pre, 2),
                                 round(proj, 2), round(psi + metrics + pre + proj, 1), round(eigh, 1), n_w,
                                 round(hessian_bytes(dims, channels) / 1e9, 1)])
    text = ("Per rank, M = 1000 per species, extrapolated (GB): Psi = b sum_atoms sum_lambda (2 lambda + 1) "
            "D(Z, lambda) with b = 8 (float64) or 4 (float32) B and D = min(max_rkhs, kept fraction x "
            "M_Z (2 lambda + 1)), M_Z = min(1000, atoms of Z), the atoms of the rank's molecules (N / R); metrics = "
            f"{metrics_per_molecule:.2f} MB per molecule (measured mean; block-sparse overlap, nearly dense "
            "for a QM9 molecule) x N / R; preconditioner = 8 B x sum of block sizes^2 (blocks: the radial "
            "channels of one (Z, lambda), <= 4000 weights), on every rank; the direct solver's Hessian "
            "8 B n_weights^2 (rank 0 only); projectors = 2 x 8 B sum M_Z (2 lambda + 1) D (the model's and "
            "the compiled predictor's copy), every rank. Not in the CG total: the base (interpreter, "
            "libraries, sparse features; ~0.3-0.5 GB) and the transient of the projectors' set-up, ~5 x 8 B "
            "(M_Z (2 lambda + 1))^2 for the largest K_MM (its eigendecomposition, every rank), before Psi "
            "exists.\n\n")
    return text + markdown_table(["max_rkhs", "Psi dtype", "molecules", "ranks", "Psi GB", "metrics GB",
                                  "precond GB", "projectors GB", "CG total GB", "K_MM eigh GB", "n_weights", "Hessian GB (direct)"],
                                 rows)


if __name__ == "__main__":
    main()
