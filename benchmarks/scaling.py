"""Prediction cost against system size: water clusters of 10 to 1000 molecules.

A model trained on distorted water molecules (demo settings, references cached) predicts clusters cut
from a liquid-water cell; time and memory per atom should stay flat (linear scaling). The PySCF SCF
time (PBE/def2-SVP, grid level 1) is measured where it runs in reasonable time.

    python benchmarks/scaling.py [--scf-up-to 32]
"""
from __future__ import annotations

import argparse
import time

from _record import markdown_table, record
from _water import cluster, monomer_model_and_cell
from rhocast.demo import MODEL, SETTINGS
from rhocast.memory import PeakRSS, current_rss_mb
from rhocast.references import ReferenceSettings, run_scf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scf-up-to", type=int, default=32, help="largest cluster (molecules) to run PySCF on")
    args = p.parse_args()
    model, cell = monomer_model_and_cell()
    rows = []
    for n in (10, 32, 100, 300, 1000):
        atoms = cluster(cell, n)
        baseline = current_rss_mb()
        with PeakRSS() as rss:
            t = time.perf_counter()
            model.predict(atoms)
            dt = time.perf_counter() - t
        peak = 1e6 * max(rss.mb - baseline, 0.0)  # bytes the prediction added to the resident set
        scf = "-"
        if n <= args.scf_up_to:
            t = time.perf_counter()
            run_scf(atoms, ReferenceSettings(**{**SETTINGS, "grid_level": 1, "conv_tol": 1e-7}).resolved())
            scf = time.perf_counter() - t
        rows.append([n, len(atoms), dt, 1e3 * dt / len(atoms), peak / 1e6, peak / 1e3 / len(atoms),
                     scf, scf / dt if scf != "-" else "-"])
        print(rows[-1], flush=True)
    record("Scaling of predictions: water clusters",
           f"Model: {MODEL}, trained on 40 distorted water molecules (PBE/def2-SVP). Prediction = features + "
           "kernels + coefficients; its peak memory is the resident memory it adds (sampled from /proc, C++ and BLAS allocations included). PySCF "
           f"(PBE/def2-SVP, grid level 1, conv_tol 1e-7) up to {args.scf_up_to} molecules.\n\n"
           + markdown_table(["molecules", "atoms", "predict (s)", "ms/atom", "predict peak memory (MB)",
                             "kB per atom", "PySCF SCF (s)", "SCF/predict"], rows))


if __name__ == "__main__":
    main()
