"""Periodic cells (3D, Gamma point): references with ``pyscf.pbc`` and the Kohn-Sham step on the cell's grid.

Modules: :mod:`rhocast.pbc.grid` (cells and fields on the uniform real-space grid),
:mod:`rhocast.pbc.references` (SCF, density fit, floor) and :mod:`rhocast.pbc.kohn_sham`.
"""
