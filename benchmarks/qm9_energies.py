"""QM9 test-set total energies of one saved model: one Kohn-Sham step, Harris-Foulkes, the Newton step.

The learning curve (qm9.py) measures energies of its largest model only, at the end of hours of fits; this
script measures any model (a file or a shipped name) on the common test set, one molecule at a time, each
row kept in the cache as soon as it is done, so an interrupted run continues where it stopped.

    python benchmarks/qm9_energies.py qm9-pbe-def2svp --n-test 40
    python benchmarks/qm9_energies.py ~/.cache/rhocast-bench/models/qm9_1000.h5
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _record import record
from qm9 import CACHE, TEST_SET, energy_report, test_set_energies
from rhocast import plots
from rhocast.dataset import Dataset
from rhocast.pretrained_models import load_model

FIGURES = Path(__file__).with_name("figures")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model file or shipped model name")
    p.add_argument("--n-test", type=int, default=None, help="only the first N test molecules")
    args = p.parse_args()
    model = load_model(args.model)
    test = Dataset(TEST_SET.with_suffix(".h5"))
    known = set(model.species_)
    indices = [int(i) for i in test.indices()[:args.n_test] if set(test.atoms(int(i)).numbers) <= known]
    stem = Path(args.model).stem
    rows_path = CACHE / "energies" / f"{stem}.jsonl"
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    rows = {}
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            if line.strip():  # a line cut by a kill is dropped and recomputed
                try:
                    row = json.loads(line)
                    rows[row["index"]] = row
                except json.JSONDecodeError:
                    pass
    for n, i in enumerate(indices):
        if i in rows:
            continue
        e = test_set_energies(model, test, [i])
        row = {"index": i, **{k: float(v[0]) for k, v in e.items()}}
        with rows_path.open("a") as f:  # one line per molecule: a kill loses at most the one in flight
            f.write(json.dumps(row) + "\n")
        rows[i] = row
        print(f"{n + 1}/{len(indices)} test molecule {i}: one-step error {row['one KS step']:+.2f} kcal/mol",
              flush=True)
    energies = {k: np.array([rows[i][k] for i in indices]) for k in rows[indices[0]] if k != "index"}
    report = energy_report(energies)
    print(report)
    figure = FIGURES / f"qm9_energy_errors_{stem}.png"
    plots.energy_error_histogram(figure, {k: energies[k] for k in ("one KS step", "Harris-Foulkes",
                                                                   "after Newton step")},
                                 "kcal/mol", threshold=1.0, title=f"QM9 test set: total-energy errors, {stem}")
    record(f"QM9 test-set energies of {stem}",
           f"Model `{args.model}` ({model.fit_report_.get('n_train', '?')} training molecules); "
           f"{len(indices)} molecules of qm9_test_150 "
           f"(PBE/def2-SVP references at grid level 1). Rows cached in {rows_path}.\n\n{report}\n\n"
           f"![energy errors](figures/{figure.name})")


if __name__ == "__main__":
    main()
