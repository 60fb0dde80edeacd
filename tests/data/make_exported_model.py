"""model_v1.h5 exported for C/C++ (model_v1.rcm) and what Python predicts with it for the water dimer of
model_v1_predictions.npz (model_v1_rcm_reference.txt, read by cpp/tests/test_model_file.cpp):
n_atoms; Z x y z (Bohr) per atom; n_coefficients; the coefficients; the corrected dipole (e Bohr); the
atomic polar tensors of that dipole (e), one line per atom of d mu_x / d R_{b, y} at 3 x + y."""
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr

from rhocast.gradients import dipole_derivatives
from rhocast.model import DensityModel
from rhocast.properties import dipole_moment

out = Path(__file__).parent
model = DensityModel.load(out / "model_v1.h5")
model.export(out / "model_v1.rcm")
d = np.load(out / "model_v1_predictions.npz")
atoms = Atoms(numbers=d["dimer_numbers"], positions=d["dimer_positions"])
c = model.predict(atoms)
mu = dipole_moment(atoms, c, model.auxbasis_, renormalize=True)
lines = [str(len(atoms))]
lines += [f"{z} " + " ".join(f"{x:.17g}" for x in r) for z, r in zip(atoms.numbers, atoms.positions / Bohr)]
lines += [str(len(c))] + [f"{x:.17g}" for x in c] + [" ".join(f"{x:.17g}" for x in mu)]
lines += [" ".join(f"{x:.17g}" for x in apt.ravel()) for apt in dipole_derivatives(model, atoms)]
(out / "model_v1_rcm_reference.txt").write_text("\n".join(lines) + "\n")
print(f"{len(c)} coefficients, dipole {mu} e Bohr")
