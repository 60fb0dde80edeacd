"""Reference model (format version 1) and predictions written by the numpy predictor (commit ea6d823)."""
import tempfile
from pathlib import Path

import numpy as np
import rhocast
from rhocast.model import DensityModel
from rhocast.sources import distorted_waters
out = Path(__file__).parent
TMP = Path(tempfile.mkdtemp())
rhocast.compute_references(distorted_waters(6, 0, amplitude=0.06), str(TMP / "w.h5"), basis="sto-3g",
                           auxbasis="def2-universal-jkfit", grid_level=1, progress=False)
model = DensityModel(cutoff=3.5, max_radial=4, max_angular=3, n_sparse=6, regularization=1e-6, n_features=30)
model.fit(rhocast.Dataset(str(TMP / "w.h5")), progress=False)
model.save(f"{out}/model_v1.h5")
mol = distorted_waters(2, 5, amplitude=0.06)
dimer = mol[0].copy(); b = mol[1].copy(); b.positions += [2.9, 0.3, 0.1]; dimer += b
cell = distorted_waters(2, 9, amplitude=0.06)
box = cell[0].copy(); c = cell[1].copy(); c.positions += [2.5, 2.4, 2.2]; box += c
box.cell = np.diag([5.0, 4.8, 4.6]); box.pbc = True; box.wrap()
structures = {"dimer": dimer, "cell": box}
arrays = {}
for name, a in structures.items():
    arrays[f"{name}_numbers"] = a.numbers
    arrays[f"{name}_positions"] = a.positions  # Angstrom
    arrays[f"{name}_cell"] = a.cell.array
    arrays[f"{name}_pbc"] = a.pbc
    arrays[f"{name}_coefficients"] = model.predict(a)
np.savez(f"{out}/model_v1_predictions.npz", **arrays)
print({k: v.shape for k, v in arrays.items()})
