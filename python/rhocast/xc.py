"""Exchange-correlation functionals that the density-based energies support.

The Kohn-Sham step and the energy components evaluate xc from a density (and its gradient) on a grid,
so they handle local (LDA) and gradient-corrected (GGA) functionals; a meta-GGA would need the
kinetic-energy density, which a fitted density does not give. One check for molecules and cells.
"""
from __future__ import annotations


def xc_type_and_derivative(xc: str) -> tuple[str, int]:
    """PySCF's type of functional ``xc`` ("LDA" or "GGA") and the density derivative order it needs
    (0: rho only; 1: rho and its gradient). Raises ValueError for any other type (meta-GGA, ...),
    naming the functional and its type."""
    from pyscf import dft

    xctype = dft.numint.NumInt()._xc_type(xc)
    if xctype not in ("LDA", "GGA"):
        raise ValueError(f"functional {xc!r} is {xctype}: only LDA and GGA are supported")
    return xctype, 0 if xctype == "LDA" else 1
