"""An ASE calculator for properties of the predicted density: ``atoms.calc = DensityCalculator(model)``.

Implemented properties, in ASE units: ``dipole`` (e Angstrom) and ``charges`` (e, per atom), both from
the predicted density corrected to the exact electron count (sum Z - charge, the L2-closest density:
:func:`rhocast.properties.with_electron_count`), so the dipole does not depend on the origin and the
charges sum to the total charge. ASE caches them per structure: a new geometry predicts again. Along
MD, another calculator gives the forces; this one is asked for the dipole at each step.
``dipole_derivatives`` (computed only when asked for, ``calc.get_property("dipole_derivatives", atoms)``):
the atomic polar tensors d mu / d R of that dipole, (n_atoms, 3, 3) with ``[b, x, y] = d mu_x / d R_{b, y}``
in e (e Angstrom per Angstrom), analytic (:func:`rhocast.gradients.dipole_derivatives`).

Molecules only: the dipole of a periodic cell is not defined by its density alone.
"""
from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr

from rhocast.gradients import dipole_derivatives
from rhocast.properties import dipole_moment, function_moments, with_electron_count


class DensityCalculator(Calculator):
    """Dipole and atomic charges of the density that ``model`` (a fitted
    :class:`rhocast.DensityModel`, a model file or a shipped model name) predicts."""

    implemented_properties = ["dipole", "charges", "dipole_derivatives"]

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(model, "predict"):
            from rhocast.pretrained_models import load_model

            model = load_model(model)
        self.model = model

    def calculate(self, atoms=None, properties=("dipole",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if atoms.pbc.any():
            raise ValueError("DensityCalculator: dipole and charges are defined for molecules (pbc False), "
                             f"not for the periodic {atoms.get_chemical_formula()}")
        charge = atoms.info.get("charge", 0)
        if not isinstance(charge, (int, np.integer)) or isinstance(charge, bool):
            raise ValueError(f"DensityCalculator: atoms.info['charge'] must be an integer, not {charge!r}")
        basis = self.model.auxbasis_
        c = with_electron_count(self.model.predict(atoms), basis, atoms, float(atoms.numbers.sum() - charge))
        q, _ = function_moments(basis, atoms.numbers)
        per_atom = np.add.reduceat(q * c, basis.offsets(atoms.numbers)[:-1])
        self.results["charges"] = atoms.numbers - per_atom
        self.results["dipole"] = dipole_moment(atoms, c, basis) * Bohr
        if "dipole_derivatives" in properties:
            self.results["dipole_derivatives"] = dipole_derivatives(self.model, atoms)
