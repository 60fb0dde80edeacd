"""Reference datasets on disk: the HDF5 layout, its atomic writer and the lazy reader ``Dataset``.

Layout (format ``rhocast-references``, version 1; lengths in Angstrom, energies in Hartree)::

    /                       attrs: format, format_version, settings (JSON), rhocast_version,
                                   pyscf_version, libxc_version
    /structures/<NNNNNN>    one group per finished structure, NNNNNN = index in the input
        attrs: hash, formula, charge, spin (2S), converged, reason ('' when converged),
               iterations, wall_time (s), n_electrons, guess ('minao' or 'model': where the SCF started;
               absent in files written before it was recorded)
        numbers (n,) int, positions (n, 3), cell (3, 3), pbc (3,) bool
        coefficients (n_coef,)  canonical order (rhocast.basis); attr metric
        energies/   attrs total, kinetic, electron_nuclear, hartree, xc, nuclear_repulsion
        floor/      attrs relative_l2, nmae (both in percent), n_electrons_fit

Every update rewrites the file through a temporary copy and ``os.replace``: a run killed at any point
leaves either the old or the new file, each complete and readable.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import h5py
import numpy as np
from ase import Atoms

from rhocast.hdf5 import open_checked

FORMAT = "rhocast-references"
FORMAT_VERSION = 1

ENERGY_KEYS = ("total", "kinetic", "electron_nuclear", "hartree", "xc", "nuclear_repulsion")
FLOOR_KEYS = ("relative_l2", "nmae", "n_electrons_fit")


def _versions() -> dict[str, str]:
    import pyscf
    from pyscf.dft import libxc

    import rhocast

    return {"rhocast_version": rhocast.__version__, "pyscf_version": pyscf.__version__,
            "libxc_version": str(libxc.libxc_version() if hasattr(libxc, "libxc_version") else libxc.__version__)}


def _group_name(index: int) -> str:
    return f"{index:06d}"


def open_for_append(path: Union[str, Path], settings: dict) -> dict[int, str]:
    """Create ``path`` or check that its settings equal ``settings``; return {index: hash} of finished structures."""
    path = Path(path)
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["settings"] = json.dumps(settings, sort_keys=True)
            for k, v in _versions().items():
                f.attrs[k] = v
            f.create_group("structures")
        os.replace(tmp, path)
        return {}
    with _open(path) as f:
        stored = json.loads(f.attrs["settings"])
        if stored != json.loads(json.dumps(settings)):
            diff = {k: (stored.get(k), settings.get(k)) for k in set(stored) | set(settings)
                    if stored.get(k) != settings.get(k)}
            raise ValueError(f"{path} was computed with other settings {diff} (stored, requested); "
                             "write to a new file")
        return {int(k): g.attrs["hash"] for k, g in f["structures"].items()}


def append_structure(path: Union[str, Path], index: int, record: dict) -> None:
    """Atomically add one finished structure (see the module docstring for ``record``'s fields)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(path, tmp)
    with h5py.File(tmp, "a") as f:
        g = f["structures"].create_group(_group_name(index))
        a: Atoms = record["atoms"]
        for k in ("hash", "charge", "spin", "converged", "reason", "iterations", "wall_time", "n_electrons", "guess"):
            g.attrs[k] = record[k]
        g.attrs["formula"] = a.get_chemical_formula()
        g["numbers"] = a.numbers
        g["positions"] = a.positions
        g["cell"] = a.cell.array
        g["pbc"] = a.pbc
        d = g.create_dataset("coefficients", data=record["coefficients"])
        d.attrs["metric"] = record["metric"]
        for name, keys in (("energies", ENERGY_KEYS), ("floor", FLOOR_KEYS)):
            sub = g.create_group(name)
            for k in keys:
                sub.attrs[k] = float(record[name][k])
    os.replace(tmp, path)


def _open(path: Path) -> h5py.File:
    return open_checked(path, FORMAT, FORMAT_VERSION, "reference dataset")


class Dataset:
    """Lazy reader of a reference dataset written by :func:`rhocast.compute_references`.

    ``len(ds)`` counts stored structures (converged or not); position ``i`` runs over them in input
    order and ``ds.input_index[i]`` gives the index in the original input.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        with _open(self.path) as f:
            self.settings: dict = json.loads(f.attrs["settings"])
            self.versions = {k: str(f.attrs[k]) for k in _versions() if k in f.attrs}
            self._keys = sorted(f["structures"].keys())
            self.converged = np.array([bool(f["structures"][k].attrs["converged"]) for k in self._keys],
                                      dtype=bool)
        self.input_index = np.array([int(k) for k in self._keys], dtype=int)
        self._file: Optional[h5py.File] = None

    # The file is opened on first access and kept open read-only (workers re-open their own).
    def _group(self, i: int) -> h5py.Group:
        if not -len(self) <= i < len(self):
            raise IndexError(f"dataset has {len(self)} structures, no index {i}")
        if self._file is None:
            self._file = _open(self.path)
        return self._file["structures"][self._keys[i]]

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, i: int) -> dict:
        return {"atoms": self.atoms(i), "coefficients": self.coefficients(i), "energies": self.energies(i),
                "floor": self.floor(i), "converged": bool(self.converged[i]),
                "input_index": int(self.input_index[int(i)])}

    def __iter__(self) -> Iterator[dict]:
        return (self[i] for i in range(len(self)))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def metric(self) -> str:
        return self.settings["metric"]

    @property
    def auxbasis(self):
        from rhocast.basis import AuxiliaryBasis

        elements = sorted({int(z) for i in range(len(self)) for z in self._group(i)["numbers"][()]})
        return AuxiliaryBasis(self.settings["auxbasis"], elements)

    def atoms(self, i: int) -> Atoms:
        g = self._group(i)
        a = Atoms(numbers=g["numbers"][()], positions=g["positions"][()], cell=g["cell"][()], pbc=g["pbc"][()])
        a.info.update(charge=int(g.attrs["charge"]), spin=int(g.attrs["spin"]))
        a.info["energy_total"] = float(g["energies"].attrs["total"])
        return a

    def coefficients(self, i: int) -> np.ndarray:
        return self._group(i)["coefficients"][()]

    def energies(self, i: int) -> dict[str, float]:
        return {k: float(v) for k, v in self._group(i)["energies"].attrs.items()}

    def floor(self, i: int) -> dict[str, float]:
        return {k: float(v) for k, v in self._group(i)["floor"].attrs.items()}

    def info(self, i: int) -> dict:
        """Per-structure attributes: converged, reason, iterations, wall_time, hash, ..."""
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self._group(i).attrs.items()}

    def indices(self, converged_only: bool = True) -> np.ndarray:
        """Positions of the structures to use (by default only converged SCFs)."""
        return np.where(self.converged)[0] if converged_only else np.arange(len(self))

    def split(self, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1),
              converged_only: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reproducible (train, validation, test) positions: a permutation by ``seed`` cut by ``fractions``."""
        if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
            raise ValueError("fractions must be three non-negative numbers that sum to 1")
        idx = np.random.default_rng(seed).permutation(self.indices(converged_only))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        return (np.sort(idx[:n_train]), np.sort(idx[n_train:n_train + n_val]),
                np.sort(idx[n_train + n_val:]))

    def __repr__(self) -> str:
        return (f"Dataset({str(self.path)!r}: {len(self)} structures, {int(self.converged.sum())} converged, "
                f"{self.settings.get('xc')}/{self.settings.get('basis')}, aux {self.settings.get('auxbasis')}, "
                f"{self.metric} metric)")
