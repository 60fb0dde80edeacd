"""Model file size and held-out error against n_features (the feature columns kept per lambda).

20 distorted water molecules train, 8 are held out (STO-3G references, def2-universal-jkfit, grid level 1,
cached in benchmarks/cache); every other hyper-parameter at its default. Chose the default n_features.

    python benchmarks/model_size.py
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _record import markdown_table, record
from rhocast.accuracy import density_errors
from rhocast.dataset import Dataset
from rhocast.model import DensityModel
from rhocast.references import compute_references
from rhocast.sources import distorted_waters

CACHE = Path(__file__).with_name("cache")


def main() -> None:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "model_size_waters"
    compute_references(distorted_waters(28, 3, amplitude=0.06), path, basis="sto-3g",
                       auxbasis="def2-universal-jkfit", grid_level=1, progress=False)
    ds = Dataset(path)
    idx = ds.indices()
    train, test = idx[:20], idx[20:]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_features in (None, 1000, 500, 300, 100):
            t = time.perf_counter()
            model = DensityModel(n_features=n_features).fit(ds, train, progress=False)
            fit_s = time.perf_counter() - t
            model.save(Path(tmp) / "m.h5")
            model.export(Path(tmp) / "m.rcm")
            err = density_errors(model, ds, test)
            rows.append([n_features or "all", fit_s, os.path.getsize(Path(tmp) / "m.h5") / 1e6,
                         os.path.getsize(Path(tmp) / "m.rcm") / 1e6, err.relative_l2, err.baseline_relative])
            print(rows[-1], flush=True)
    record("Model size against n_features",
           "20 distorted waters (STO-3G / def2-universal-jkfit, grid level 1) train, 8 held out; default "
           "hyper-parameters except n_features; model format version 2 (float64).\n\n"
           + markdown_table(["n_features", "fit (s)", "model .h5 (MB)", "exported .rcm (MB)", "held-out rel. L2 %",
                             "baseline-relative %"], rows))


if __name__ == "__main__":
    main()
