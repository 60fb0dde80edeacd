"""The reference dataset: round trip, splits, version 1, crash safety, concurrent writers."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

import rhocast
from rhocast.dataset import Dataset


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "refs"
    mols = []
    for k in range(6):
        a = molecule("H2O"); a.positions[1, 1] += 0.02 * k; mols.append(a)
    rhocast.compute_references(mols, path, basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1,
                               progress=False)
    return path, mols


def test_round_trip(small_dataset):
    path, mols = small_dataset
    ds = Dataset(path)
    assert len(ds) == 6 and ds.converged.all() and ds.metric == "coulomb"
    for i, rec in enumerate(ds):
        np.testing.assert_allclose(rec["atoms"].positions, mols[i].positions, atol=1e-12)
        assert rec["coefficients"].size == ds.auxbasis.offsets(mols[i].numbers)[-1]
        e = rec["energies"]
        parts = e["kinetic"] + e["electron_nuclear"] + e["hartree"] + e["xc"] + e["nuclear_repulsion"]
        assert abs(parts - e["total"]) < 1e-8  # the components add up to the SCF energy
    assert ds.settings["basis"] == "sto-3g" and ds.settings["auxbasis"] == "def2-universal-jkfit"
    assert "pyscf_version" in ds.versions and "libxc_version" in ds.versions


def test_split_is_reproducible_and_disjoint(small_dataset):
    ds = Dataset(small_dataset[0])
    a, b = ds.split(seed=3, fractions=(0.5, 0.25, 0.25)), ds.split(seed=3, fractions=(0.5, 0.25, 0.25))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    allidx = np.concatenate(a)
    assert sorted(allidx) == list(range(6))
    assert any(not np.array_equal(ds.split(seed=s, fractions=(0.5, 0.25, 0.25))[0], a[0]) for s in range(4, 9))


V1 = Path(__file__).parent / "data" / "references_v1.h5"  # written by rhocast's version-1 writer


def test_truncated_v1_file_gives_clear_error(tmp_path):
    data = V1.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated or not an HDF5 file"):
        Dataset(cut)
    with pytest.raises(FileNotFoundError):
        Dataset(tmp_path / "none.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no dataset.json"):
        Dataset(tmp_path / "empty")


def test_version_1_reads_and_converts(tmp_path):
    from rhocast.dataset import convert, open_for_append

    old = Dataset(V1)
    assert old.format_version == 1 and len(old) == 3
    new = convert(V1, tmp_path / "v2")
    assert new.format_version == 2 and len(new) == 3 and new.settings == old.settings
    for i in range(3):
        np.testing.assert_array_equal(new.coefficients(i), old.coefficients(i))
        np.testing.assert_array_equal(new.atoms(i).positions, old.atoms(i).positions)
        assert new.energies(i) == old.energies(i) and new.info(i)["hash"] == old.info(i)["hash"]
    with pytest.raises(ValueError, match="version-1 .* convert"):
        open_for_append(V1, old.settings)


def test_atoms_info_survives(small_dataset, tmp_path):
    a = molecule("H2O")
    a.info.update(qm9_index=1234, name="water")
    rhocast.compute_references([a], tmp_path / "r", basis="sto-3g", auxbasis="def2-universal-jkfit", grid_level=1,
                               progress=False)
    info = Dataset(tmp_path / "r").atoms(0).info
    assert info["qm9_index"] == 1234 and info["name"] == "water" and info["charge"] == 0


# A writer that appends fake structures as fast as it can (no SCF): indices start, start + step, ...
_WRITER = """
import sys, numpy as np
from ase.build import molecule
from rhocast.dataset import open_for_append, append_structure, ENERGY_KEYS, FLOOR_KEYS
path, start, step, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
done = open_for_append(path, {"basis": "fake"})
for i in range(start, start + step * n, step):
    if i in done:
        continue
    a = molecule("H2O"); a.positions[0, 0] = i
    append_structure(path, i, dict(atoms=a, hash=f"h{i}", charge=0, spin=0, converged=True, reason="",
                     iterations=1, wall_time=0.0, n_electrons=10.0, guess="minao",
                     coefficients=np.full(20000, float(i)), metric="coulomb",
                     energies={k: float(i) for k in ENERGY_KEYS}, floor={k: 0.0 for k in FLOOR_KEYS}))
"""


def _writer(path, start, step, n):
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(start), str(step), str(n)])


def _check_complete(ds):
    for pos, i in enumerate(ds.input_index):
        assert ds.info(pos)["hash"] == f"h{i}"
        np.testing.assert_array_equal(ds.coefficients(pos), np.full(20000, float(i)))
        assert ds.atoms(pos).positions[0, 0] == i


def test_sigkill_during_appends_leaves_a_readable_dataset_that_resumes(tmp_path):
    path = tmp_path / "refs"
    p = _writer(path, 0, 1, 100000)
    deadline = time.time() + 60
    # finished structures only: the one being written is a hidden temporary file
    while time.time() < deadline and (not (path / "structures").exists()
                                      or len(list((path / "structures").glob("[!.]*.h5"))) < 20):
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    ds = Dataset(path)
    assert len(ds) >= 20
    _check_complete(ds)  # every listed structure is whole
    assert list(ds.input_index) == list(range(len(ds)))
    n = len(ds)
    assert _writer(path, 0, 1, n + 5).wait() == 0  # resumes: the rest is appended, nothing twice
    ds = Dataset(path)
    assert list(ds.input_index) == list(range(n + 5))
    _check_complete(ds)


def test_two_concurrent_writers_make_one_dataset(tmp_path):
    path = tmp_path / "refs"
    writers = [_writer(path, 0, 2, 30), _writer(path, 1, 2, 30)]
    assert [w.wait() for w in writers] == [0, 0]
    ds = Dataset(path)
    assert list(ds.input_index) == list(range(60))
    _check_complete(ds)
    assert len(os.listdir(path / "index")) == 2  # one index per writer
