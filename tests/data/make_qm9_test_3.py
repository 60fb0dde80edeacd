"""Writes qm9_test_3.npz: the first three molecules of ../shared/data/qm9_test_150.h5 (PBE/def2-SVP,
def2-universal-jkfit Coulomb fit, grid level 1) with their fitted coefficients, so that the shipped QM9
model is tested without the shared data. Run from the repository root."""
from pathlib import Path

import numpy as np

from rhocast.dataset import Dataset

ds = Dataset(Path(__file__).resolve().parents[3] / "shared" / "data" / "qm9_test_150.h5")
idx = [int(i) for i in ds.indices()[:3]]
out = {}
for k, i in enumerate(idx):
    a = ds.atoms(i)
    out[f"numbers_{k}"], out[f"positions_{k}"], out[f"coefficients_{k}"] = a.numbers, a.positions, ds.coefficients(i)
np.savez_compressed(Path(__file__).with_name("qm9_test_3.npz"), **out)
