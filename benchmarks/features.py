"""lambda-SOAP speed: rhocast against featomic at equal hyper-parameters, and linear scaling.

Cutoff 4 A, 8 radial functions, l <= 6, lambda <= 5, Gaussian width 0.3 A, cosine smoothing 0.5 A.
featomic is a benchmark-only dependency: run with an interpreter that has it (e.g. a venv with
`pip install featomic`); without it only rhocast is timed.

    python benchmarks/features.py [--threads 2]
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from _record import best_of, markdown_table, record
from rhocast import _core, sources
from rhocast.descriptors import LambdaSoap

HYPER = dict(cutoff=4.0, max_radial=8, max_angular=6, max_lambda=5, atomic_width=0.3, cutoff_width=0.5)


def featomic_calculator():
    try:
        import featomic
        from featomic.clebsch_gordan import EquivariantPowerSpectrum
    except ImportError:
        return None
    import metatensor

    expansion = featomic.SphericalExpansion(
        cutoff={"radius": HYPER["cutoff"], "smoothing": {"type": "ShiftedCosine", "width": HYPER["cutoff_width"]}},
        density={"type": "Gaussian", "width": HYPER["atomic_width"]},
        basis={"type": "TensorProduct", "max_angular": HYPER["max_angular"],
               "radial": {"type": "Gto", "max_radial": HYPER["max_radial"] - 1}})
    calc = EquivariantPowerSpectrum(expansion)
    keys = metatensor.Labels(["o3_lambda", "o3_sigma"],
                             np.array([[lam, 1] for lam in range(HYPER["max_lambda"] + 1)], dtype=np.int32))

    def compute(structures):
        return calc.compute(structures, selected_keys=keys, neighbors_to_properties=True)

    return compute


def streamed(soap: LambdaSoap, atoms, chunk: int) -> tuple[float, int]:
    """Features of every atom of ``atoms``, ``chunk`` atoms at a time (each chunk is discarded, as a
    predictor streaming over atoms would): wall time and peak memory of numpy allocations."""
    tracemalloc.start()
    t = time.perf_counter()
    for start in range(0, len(atoms), chunk):
        soap.compute(atoms, atoms_subset=np.arange(start, min(start + chunk, len(atoms))))
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunk", type=int, default=512, help="atoms per chunk in the scaling run")
    args = p.parse_args()
    _core.set_num_threads(args.threads)
    cells = sources.liquid_water(2, n_molecules=32, seed=0, equilibration_ps=0.5, spacing_ps=0.2)
    molecules = [m for m in sources.qm9(20, seed=0)]
    species = sorted({int(z) for a in cells + molecules for z in a.numbers})
    soap = LambdaSoap(species, **HYPER)
    soap.compute(molecules[:1])  # build the radial tables outside the timing
    theirs = featomic_calculator()
    rows = []
    for name, structures in (("liquid water, 32-molecule cells", cells), ("QM9 molecules", molecules)):
        n_atoms = sum(len(a) for a in structures)
        ours = best_of(lambda: soap.compute(structures), 3) / n_atoms
        row = [name, n_atoms, 1e3 * ours]
        if theirs is not None:
            ref = best_of(lambda: theirs(structures), 3) / n_atoms
            row += [1e3 * ref, ref / ours]
        else:
            row += ["(featomic not installed)", "-"]
        rows.append(row)
        print(row, flush=True)
    n_feat = sum(soap.n_features(lam) * (2 * lam + 1) for lam in range(HYPER["max_lambda"] + 1))
    table = markdown_table(["system", "atoms", "rhocast ms/atom", "featomic ms/atom", "speed-up (featomic/rhocast)"],
                           rows)
    scaling = []
    for rep in ((1, 1, 1), (2, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4), (5, 5, 5)):
        big = cells[0].repeat(rep)
        t, peak = streamed(soap, big, args.chunk)
        scaling.append([len(big), t, 1e3 * t / len(big), n_feat * 8 * min(args.chunk, len(big)) / 1e6,
                        peak / 1e6])
        print(scaling[-1], flush=True)
    table2 = markdown_table(["atoms", "time (s)", "ms/atom", "features held at once (MB)",
                             "peak traced memory (MB)"], scaling)
    record("lambda-SOAP features: rhocast vs featomic, and scaling",
           f"{args.threads} OpenMP threads; hyper-parameters {HYPER}; {n_feat} feature values per atom "
           f"(all lambda). Best of 3 runs.\n\n{table}\n\nScaling (water cell repeated; features computed "
           f"{args.chunk} atoms at a time and discarded, as a streaming predictor does):\n\n{table2}")


if __name__ == "__main__":
    main()
