"""Package a shipped model (``rhocast.pretrained(name)``) from the best model a benchmark measured.

The fitted model is turned into its prediction-only form (``DensityModel.for_prediction``: thin projectors
V w, float32 sparse features), checked against the full model and measured on the benchmark's held-out set;
its training set, reference settings and test errors go into its metadata (``fit_report_["benchmark"]``)
and the file into python/rhocast/pretrained_models/<name>.h5, refused above 25 MB. The README's table of
shipped models quotes the printed row.

    python benchmarks/pretrained.py qm9-pbe-def2svp ~/.cache/rhocast-bench/models/qm9_300.h5
    python benchmarks/pretrained.py water-pbe-gthdzvp ~/.cache/rhocast-bench/models/liquid_water_32.h5
"""
from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast.accuracy import density_errors
from rhocast.dataset import Dataset
from rhocast.model import DensityModel
from rhocast.pretrained_models import FOLDER

CACHE = Path(os.environ.get("RHOCAST_BENCH_CACHE", "~/.cache/rhocast-bench")).expanduser()
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAX_MB = 25.0


def qm9_test(model: DensityModel) -> tuple[Dataset, list[int], str]:
    ds = Dataset(SHARED / "qm9_test_150.h5")
    return ds, [int(i) for i in ds.indices()], "qm9_test_150 (150 molecules drawn at random from all of QM9)"


def water_test(model: DensityModel) -> tuple[Dataset, list[int], str]:
    ds = Dataset(CACHE / "liquid_water_32")
    trained = {int(i) for i in model.train_indices_}
    held_out = [int(i) for i in ds.indices() if int(i) not in trained]
    return ds, held_out, f"the {len(held_out)} cells of 32 molecules of liquid_water.py it was not trained on"


MODELS = {
    "qm9-pbe-def2svp": (qm9_test, "QM9 molecules (up to 9 heavy atoms, H C N O F) drawn at random from all of "
                                  "qm9pack's QM9, test-set molecules excluded by QM9 index (benchmarks/qm9.py)"),
    "water-pbe-gthdzvp": (water_test, "32-molecule liquid-water cells from one TIP3P trajectory "
                                      "(benchmarks/liquid_water.py)"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("model", type=Path, help="the fitted model file (the benchmark's best)")
    args = p.parse_args()
    full = DensityModel.load(args.model)
    test_set, training_set = MODELS[args.name]
    ds, indices, test_name = test_set(full)
    indices = [i for i in indices if set(ds.atoms(i).numbers) <= set(full.species_)]
    shipped = full.for_prediction()
    change = 0.0
    for atoms in (ds.atoms(i) for i in indices[:10]):
        c_full = full.predict(atoms)
        change = max(change, float(np.linalg.norm(shipped.predict(atoms) - c_full)
                                   / np.linalg.norm(c_full - full._baseline_vector(atoms))))
    errors = density_errors(shipped, ds, indices)
    floor = float(np.mean([ds.floor(i)["relative_l2"] for i in indices]))
    shipped.fit_report_["benchmark"] = {
        "name": args.name, "training_set": training_set, "n_train": int(full.fit_report_["n_train"]),
        "test_set": test_name, "n_test": len(indices), "test_relative_l2_percent": errors.relative_l2,
        "test_baseline_relative_percent": errors.baseline_relative, "test_floor_relative_l2_percent": floor,
        "change_against_full_model": change, "packaged": datetime.date.today().isoformat()}
    path = FOLDER / f"{args.name}.h5"
    shipped.save(path)
    mb = path.stat().st_size / 1e6
    if mb > MAX_MB:
        path.unlink()
        raise SystemExit(f"{args.name}: {mb:.1f} MB is over the {MAX_MB:g} MB a shipped model may take: "
                         "fit it with fewer sparse environments or n_features")
    hp = full.get_params()
    row = [args.name, int(full.fit_report_["n_train"]), hp["n_sparse"], hp["n_features"], hp["regularization"],
           len(indices), errors.relative_l2, errors.baseline_relative, floor, f"{change:.1e}", mb]
    print(markdown_table(["name", "train", "sparse env.", "features", "eta", "test structures", "test rel. L2 %",
                          "test baseline-rel. %", "fit floor %", "change vs full model", "file MB"], [row]))
    record(f"Pretrained model {args.name}",
           f"{training_set}; tested on {test_name}. Reference settings: {full.reference_settings_}. "
           "Shipped in prediction-only form (thin projectors, float32 sparse features); 'change vs full model' "
           "is the largest |c_shipped - c_full| / |c_full - baseline| over 10 test structures.\n\n"
           + markdown_table(["name", "train", "sparse env.", "features", "eta", "test structures",
                             "test rel. L2 %", "test baseline-rel. %", "fit floor %", "change vs full model",
                             "file MB"], [row]))


if __name__ == "__main__":
    main()
