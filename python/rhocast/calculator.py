"""An ASE calculator for properties of the predicted density: ``atoms.calc = DensityCalculator(model)``.

Implemented properties, in ASE units: ``dipole`` (e Angstrom) and ``charges`` (e, per atom), both from
the predicted density corrected to the exact electron count (sum Z - charge, where Z excludes the core
electrons of an ECP the model's references used, ``DensityModel.nuclear_charges``; the L2-closest density:
:func:`rhocast.properties.with_electron_count`), so the dipole does not depend on the origin and the
charges sum to the total charge. ASE caches them per structure: a new geometry predicts again. Along
MD, another calculator gives the forces; this one is asked for the dipole at each step.
``dipole_derivatives`` (computed only when asked for, ``calc.get_property("dipole_derivatives", atoms)``):
the atomic polar tensors d mu / d R of that dipole, (n_atoms, 3, 3) with ``[b, x, y] = d mu_x / d R_{b, y}``
in e (e Angstrom per Angstrom), analytic (:func:`rhocast.gradients.dipole_derivatives`).

Periodic cells only with ``periodic=True``: the dipole of a cell is not defined by its density alone
(it changes by a lattice vector times the charge moved when an atom is wrapped), so the calculator then
gives the dipole of the atom-centred density at the positions as given, the electron count corrected
over the cell (lattice-summed overlap). Along a trajectory whose positions are not wrapped (ASE's MD
does not wrap them) this is continuous, and its changes are what an IR spectrum needs.

With ``molecules`` (lists of atom indices, each a neutral molecule, together every atom once) the count
is corrected molecule by molecule instead, each with the overlap of its own functions: no charge moves
between molecules, the dipole is the sum of the molecular dipoles (each independent of the origin), and
the cost stays linear in the molecules (no factorisation of the whole cell's overlap).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr

from rhocast.gradients import dipole_derivatives
from rhocast.properties import dipole_moment, function_moments, with_electron_count


class DensityCalculator(Calculator):
    """Dipole and atomic charges of the density that ``model`` (a fitted
    :class:`rhocast.DensityModel`, a model file or a shipped model name) predicts; ``periodic``: accept
    periodic cells; ``molecules``: correct the electron count per neutral molecule (both: see the
    module's documentation)."""

    implemented_properties = ["dipole", "charges", "dipole_derivatives"]

    def __init__(self, model, periodic: bool = False, molecules: Optional[Sequence[Sequence[int]]] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.periodic = periodic
        self.molecules = None if molecules is None else [np.asarray(m, dtype=int) for m in molecules]
        if not hasattr(model, "predict"):
            from rhocast.pretrained_models import load_model

            model = load_model(model)
        self.model = model

    def calculate(self, atoms=None, properties=("dipole",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if atoms.pbc.any() and not self.periodic:
            raise ValueError("DensityCalculator: dipole and charges are defined for molecules (pbc False), "
                             f"not for the periodic {atoms.get_chemical_formula()}; DensityCalculator(model, "
                             "periodic=True) gives the dipole at the positions as given (for MD, not wrapped)")
        charge = atoms.info.get("charge", 0)
        if not isinstance(charge, (int, np.integer)) or isinstance(charge, bool):
            raise ValueError(f"DensityCalculator: atoms.info['charge'] must be an integer, not {charge!r}")
        basis = self.model.auxbasis_
        nuclear = self.model.nuclear_charges(atoms.numbers)  # Z - ECP core electrons
        c = self.model.predict(atoms)
        if self.molecules is None:
            c = with_electron_count(c, basis, atoms, float(nuclear.sum() - charge))
        else:
            c = self._neutral_molecules(atoms, c, charge, nuclear)
        q, _ = function_moments(basis, atoms.numbers)
        per_atom = np.add.reduceat(q * c, basis.offsets(atoms.numbers)[:-1])
        self.results["charges"] = nuclear - per_atom
        self.results["dipole"] = dipole_moment(atoms, c, basis, nuclear_charges=nuclear) * Bohr
        if "dipole_derivatives" in properties:
            if self.molecules is not None or atoms.pbc.any():
                raise ValueError("DensityCalculator: dipole_derivatives are those of a molecule's dipole with "
                                 "its whole electron count corrected (pbc False, no molecules=)")
            self.results["dipole_derivatives"] = dipole_derivatives(self.model, atoms)

    def _neutral_molecules(self, atoms, coefficients: np.ndarray, charge: int, nuclear: np.ndarray) -> np.ndarray:
        """``coefficients`` with each molecule's part corrected to its own electron count (the sum of its
        ``nuclear`` charges, Z - ECP core electrons)."""
        covered = np.sort(np.concatenate(self.molecules)) if self.molecules else np.zeros(0, dtype=int)
        if not np.array_equal(covered, np.arange(len(atoms))):
            raise ValueError(f"DensityCalculator: molecules must hold every atom index 0..{len(atoms) - 1} "
                             "exactly once")
        if charge != 0:
            raise ValueError(f"DensityCalculator: molecules are corrected to neutral, but atoms.info['charge'] "
                             f"is {charge}")
        basis = self.model.auxbasis_
        offsets = basis.offsets(atoms.numbers)
        out = coefficients.copy()
        for atom_indices in self.molecules:
            columns = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in atom_indices])
            molecule = Atoms(atoms.numbers[atom_indices], atoms.positions[atom_indices])
            out[columns] = with_electron_count(coefficients[columns], basis, molecule,
                                               float(nuclear[atom_indices].sum()))
        return out
