"""Energy conversions, from ASE's CODATA constants (the one source every module and benchmark uses)."""
from ase.units import Hartree, kcal, mol

HARTREE_MEV = Hartree * 1e3  # meV per Hartree
HARTREE_KCAL_MOL = Hartree / (kcal / mol)  # kcal/mol per Hartree
