"""Reference datasets on disk: the layout, its crash-safe writer and the lazy reader ``Dataset``.

Format ``rhocast-references`` version 2 is a folder (lengths in Angstrom, energies in Hartree)::

    REFS/dataset.json           format, format_version, settings, the versions that created it
    REFS/structures/NNNNNNNN.h5 one finished structure (NNNNNNNN = index in the input), root attrs:
        hash, formula, charge, spin (2S), converged, reason ('' when converged), iterations,
        wall_time (s), n_electrons, guess ('minao' or 'model'), info (JSON of atoms.info),
        rhocast_version, pyscf_version, libxc_version
        numbers (n,) int, positions (n, 3), cell (3, 3), pbc (3,) bool
        coefficients (n_coef,)  canonical order (rhocast.basis); attr metric
        energies/   attrs total, kinetic, electron_nuclear, hartree, xc, nuclear_repulsion
        floor/      attrs relative_l2, nmae (both in percent), n_electrons_fit
    REFS/index/WRITER.jsonl     one line {index, hash, converged} per structure that WRITER finished

Why this layout: a structure is written to a temporary name, flushed to disk and renamed, so adding
one costs its own size (version 1 rewrote the whole file), a run killed at any point (SIGKILL
included) loses only the structures in flight, and a reader never sees a half-written structure.
Writers (worker processes, MPI ranks, machines sharing a file system) never write the same file:
each structure has its own name and each writer its own index. The index is a cache of the
structures' attributes, so that opening a dataset reads no structure file; a structure without an
index line (a writer killed between rename and index) is read from its file. Reading k structures
opens k files.

Version 1 (one HDF5 file with a group per structure under ``/structures``) still reads;
:func:`convert` turns it into version 2.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import h5py
import numpy as np
from ase import Atoms

from rhocast.atomic import atomic_write, write_bytes_atomic
from rhocast.hdf5 import open_checked

FORMAT = "rhocast-references"
FORMAT_VERSION = 2

ENERGY_KEYS = ("total", "kinetic", "electron_nuclear", "hartree", "xc", "nuclear_repulsion")
FLOOR_KEYS = ("relative_l2", "nmae", "n_electrons_fit")
_RECORD_ATTRS = ("hash", "charge", "spin", "converged", "reason", "iterations", "wall_time", "n_electrons", "guess")


def _versions() -> dict[str, str]:
    import pyscf
    from pyscf.dft import libxc

    import rhocast

    return {"rhocast_version": rhocast.__version__, "pyscf_version": pyscf.__version__,
            "libxc_version": str(libxc.libxc_version() if hasattr(libxc, "libxc_version") else libxc.__version__)}


def _structure_name(index: int) -> str:
    return f"{index:08d}"


def _read_meta(path: Path) -> dict:
    meta_file = path / "dataset.json"
    if not meta_file.is_file():
        raise ValueError(f"{path} is not a rhocast reference dataset (no dataset.json)")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a rhocast reference dataset")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has reference dataset format version {meta.get('format_version')}; "
                         f"this rhocast reads versions 1 and {FORMAT_VERSION}")
    return meta


def _settings_differ(stored: dict, settings: dict) -> dict:
    settings = json.loads(json.dumps(settings))
    return {k: (stored.get(k), settings.get(k)) for k in sorted(set(stored) | set(settings))
            if stored.get(k) != settings.get(k)}


def open_for_append(path: Union[str, Path], settings: dict) -> dict[int, str]:
    """Create the dataset folder ``path`` or check that its settings equal ``settings``; return
    {index: hash} of the finished structures. A version-1 file is refused (``convert`` it first); other
    PySCF, libxc or rhocast versions than the dataset's are named in a warning (references of one
    dataset should come from one code)."""
    path = Path(path)
    if path.is_file():
        raise ValueError(f"{path} is a version-1 reference dataset (one HDF5 file), which is read-only: "
                         f"convert it with rhocast.dataset.convert({str(path)!r}, NEW_FOLDER) and append there")
    if not path.exists() or not (path / "dataset.json").exists():
        # Another writer may be creating it right now: its folders and temporary files are no conflict.
        if path.exists() and any(not (p.name in ("structures", "index") or p.name.startswith(".dataset.json."))
                                 for p in path.iterdir()):
            raise ValueError(f"{path} exists and is not a rhocast reference dataset: choose a new folder")
        (path / "structures").mkdir(parents=True, exist_ok=True)
        (path / "index").mkdir(exist_ok=True)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "settings": settings, **_versions()}
        # Several writers may create it at once: each writes the same content, the rename is atomic.
        write_bytes_atomic(path / "dataset.json", json.dumps(meta, sort_keys=True, indent=1).encode())
    meta = _read_meta(path)
    diff = _settings_differ(meta["settings"], settings)
    if diff:
        raise ValueError(f"{path} was computed with other settings {diff} (stored, requested); "
                         "write to a new folder")
    other = {k: (meta.get(k), v) for k, v in _versions().items() if meta.get(k) != v}
    if other:
        import warnings

        warnings.warn(f"{path} was started with other versions {other} (dataset, now): each structure records "
                      "its own versions", stacklevel=2)
    return {i: entry["hash"] for i, entry in _scan(path).items()}


def _scan(path: Path) -> dict[int, dict]:
    """{index: {hash, converged, elements}} of every finished structure of a version-2 dataset."""
    indexed: dict[int, dict] = {}
    for log in sorted((path / "index").glob("*.jsonl")):
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a killed writer: its structure file says it all
                continue
            indexed.setdefault(int(entry["index"]), entry)
    found = {}
    for name in os.listdir(path / "structures"):
        if not name.endswith(".h5") or name.startswith("."):
            continue  # temporary files of writers in flight
        i = int(name[:-3])
        if i not in indexed:
            with h5py.File(path / "structures" / name, "r") as f:
                indexed[i] = {"index": i, "hash": str(f.attrs["hash"]), "converged": bool(f.attrs["converged"]),
                              "elements": sorted({int(z) for z in f["numbers"][()]})}
        found[i] = indexed[i]
    return dict(sorted(found.items()))


def _writer_id() -> str:
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK"))
    return f"{socket.gethostname()}-{os.getpid()}" + (f"-rank{rank}" if rank is not None else "")


def append_structure(path: Union[str, Path], index: int, record: dict) -> None:
    """Add one finished structure (see the module docstring for ``record``'s fields) at its own cost:
    written under a temporary name, flushed, renamed, then indexed."""
    path = Path(path)
    a: Atoms = record["atoms"]
    with atomic_write(path / "structures" / f"{_structure_name(index)}.h5") as tmp, h5py.File(tmp, "w") as f:
        for k in _RECORD_ATTRS:
            f.attrs[k] = record[k]
        f.attrs["formula"] = a.get_chemical_formula()
        f.attrs["info"] = json.dumps({k: v for k, v in a.info.items() if _is_json(v)})
        for k, v in _versions().items():
            f.attrs[k] = v
        f["numbers"] = a.numbers
        f["positions"] = a.positions
        f["cell"] = a.cell.array
        f["pbc"] = a.pbc
        d = f.create_dataset("coefficients", data=record["coefficients"])
        d.attrs["metric"] = record["metric"]
        for name, keys in (("energies", ENERGY_KEYS), ("floor", FLOOR_KEYS)):
            sub = f.create_group(name)
            for k in keys:
                sub.attrs[k] = float(record[name][k])
    line = json.dumps({"index": int(index), "hash": str(record["hash"]), "converged": bool(record["converged"]),
                       "elements": sorted({int(z) for z in a.numbers})})
    with open(path / "index" / f"{_writer_id()}.jsonl", "a") as f:
        f.write(line + "\n")  # one write of one short line
        f.flush()


def _is_json(v) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def convert(v1_path: Union[str, Path], folder: Union[str, Path]) -> "Dataset":
    """Write the version-1 file ``v1_path`` as the version-2 folder ``folder`` (resumable) and open it."""
    old = Dataset(v1_path)
    if old.format_version != 1:
        raise ValueError(f"{v1_path} is not a version-1 reference dataset")
    done = open_for_append(folder, old.settings)
    for pos in range(len(old)):
        index = int(old.input_index[pos])
        if index in done:
            continue
        info = old.info(pos)
        record = {k: info.get(k, "minao" if k == "guess" else None) for k in _RECORD_ATTRS}
        record.update(atoms=old.atoms(pos), coefficients=old.coefficients(pos), metric=old.metric,
                      energies=old.energies(pos), floor=old.floor(pos))
        append_structure(folder, index, record)
    old.close()
    return Dataset(folder)


class Dataset:
    """Lazy reader of a reference dataset written by :func:`rhocast.compute_references`: a version-2
    folder or a version-1 file.

    ``len(ds)`` counts stored structures (converged or not); position ``i`` runs over them in input
    order and ``ds.input_index[i]`` gives the index in the original input.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self._file: Optional[h5py.File] = None  # version 1: the file; version 2: the last structure read
        self._open_index: Optional[int] = None
        if self.path.is_dir():
            meta = _read_meta(self.path)
            self.format_version = FORMAT_VERSION
            self.settings: dict = meta["settings"]
            self.versions = {k: str(meta[k]) for k in _versions() if k in meta}
            entries = _scan(self.path)
            self.input_index = np.array(list(entries), dtype=int)
            self.converged = np.array([bool(e["converged"]) for e in entries.values()], dtype=bool)
            self._elements = sorted({z for e in entries.values() for z in e["elements"]})
            return
        with open_checked(self.path, FORMAT, 1, "reference dataset") as f:
            self.format_version = 1
            self.settings = json.loads(f.attrs["settings"])
            self.versions = {k: str(f.attrs[k]) for k in _versions() if k in f.attrs}
            keys = sorted(f["structures"].keys())
            self.converged = np.array([bool(f["structures"][k].attrs["converged"]) for k in keys], dtype=bool)
        self.input_index = np.array([int(k) for k in keys], dtype=int)
        self._elements = None

    # Files are opened on first access and kept open read-only (workers re-open their own).
    def _group(self, i: int) -> h5py.Group:
        if not -len(self) <= i < len(self):
            raise IndexError(f"dataset has {len(self)} structures, no index {i}")
        index = int(self.input_index[i])
        if self.format_version == 1:
            if self._file is None:
                self._file = open_checked(self.path, FORMAT, 1, "reference dataset")
            return self._file["structures"][f"{index:06d}"]
        if self._open_index != index:
            self.close()
            self._file = h5py.File(self.path / "structures" / f"{_structure_name(index)}.h5", "r")
            self._open_index = index
        return self._file["/"]

    def __len__(self) -> int:
        return len(self.input_index)

    def __getitem__(self, i: int) -> dict:
        return {"atoms": self.atoms(i), "coefficients": self.coefficients(i), "energies": self.energies(i),
                "floor": self.floor(i), "converged": bool(self.converged[i]),
                "input_index": int(self.input_index[int(i)])}

    def __iter__(self) -> Iterator[dict]:
        return (self[i] for i in range(len(self)))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"], state["_open_index"] = None, None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._open_index = None

    @property
    def metric(self) -> str:
        return self.settings["metric"]

    @property
    def auxbasis(self):
        from rhocast.basis import AuxiliaryBasis

        if self._elements is None:  # version 1 keeps no index: read every structure once
            self._elements = sorted({int(z) for i in range(len(self)) for z in self._group(i)["numbers"][()]})
        return AuxiliaryBasis(self.settings["auxbasis"], self._elements)

    def atoms(self, i: int) -> Atoms:
        g = self._group(i)
        a = Atoms(numbers=g["numbers"][()], positions=g["positions"][()], cell=g["cell"][()], pbc=g["pbc"][()])
        a.info.update(json.loads(g.attrs.get("info", "{}")))
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
