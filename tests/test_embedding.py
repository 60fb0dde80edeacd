"""Embedding without Python: the core built with -DRHOCAST_PYTHON=OFF and installed, cpp/tests and
cpp/examples built against it with find_package(rhocast), ctest (C++ and C API predictions and dipole
against Python's values to 1e-12), and the examples' dipole against the Python prediction.

The core build is kept in pytest's cache (.pytest_cache/d/rhocast-embedding): a fresh checkout compiles
it once (the whole core, a few minutes on 2 cores), later runs only re-check it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from ase.units import Bohr

from rhocast.model import DensityModel
from rhocast.properties import dipole_moment

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")


def _run(*cmd, cwd=None):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _eigen_prefix() -> str:
    """Eigen of the cmeel-eigen wheel (a test extra: `pip install ".[test]"`)."""
    try:
        import cmeel
    except ImportError:
        pytest.skip("Eigen for the C++ build: install cmeel-eigen (part of the test extra)")
    return str(Path(cmeel.__file__).parents[1] / "cmeel.prefix")


@pytest.fixture(scope="module")
def installed(request) -> Path:
    """Prefix of the installed core (lib/cmake/rhocast, include/rhocast)."""
    work = Path(request.config.cache.mkdir("rhocast-embedding"))
    build, prefix = work / "core", work / "prefix"
    jobs = str(len(os.sched_getaffinity(0)))
    _run("cmake", "-S", ROOT, "-B", build, "-DRHOCAST_PYTHON=OFF", "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_PREFIX_PATH={_eigen_prefix()}", f"-DPython_EXECUTABLE={sys.executable}")
    _run("cmake", "--build", build, "-j", jobs)
    _run("cmake", "--install", build, "--prefix", prefix)
    assert (prefix / "lib" / "cmake" / "rhocast" / "rhocastConfig.cmake").is_file() or \
        (prefix / "lib64" / "cmake" / "rhocast" / "rhocastConfig.cmake").is_file()
    assert (prefix / "include" / "rhocast" / "rhocast.h").is_file()
    return prefix


@pytest.fixture(scope="module")
def programs(installed, request) -> Path:
    """Build folder of cpp/tests (which also builds cpp/examples) against the installed package only."""
    build = Path(request.config.cache.mkdir("rhocast-embedding")) / "tests"
    _run("cmake", "-S", ROOT / "cpp" / "tests", "-B", build, f"-DCMAKE_PREFIX_PATH={installed};{_eigen_prefix()}")
    _run("cmake", "--build", build, "-j", str(len(os.sched_getaffinity(0))))
    return build


def test_ctest_cpp_and_c_api_equal_python(programs):
    out = _run("ctest", "--test-dir", programs, "--output-on-failure")
    assert "100% tests passed" in out


@pytest.mark.parametrize("program", ["dipole_c", "dipole_cpp"])
def test_example_prints_the_python_dipole(programs, program, tmp_path):
    d = np.load(DATA / "model_v1_predictions.npz")
    atoms = Atoms(numbers=d["dimer_numbers"], positions=d["dimer_positions"])
    write(tmp_path / "dimer.xyz", atoms, format="xyz")
    model = DensityModel.load(DATA / "model_v1.h5")
    want = dipole_moment(atoms, model.predict(atoms), model.auxbasis_, renormalize=True) * Bohr  # e Angstrom
    out = _run(programs / "examples" / program, DATA / "model_v1.rcm", tmp_path / "dimer.xyz")
    got = np.array(out.splitlines()[0].split(":")[1].split(), dtype=float)
    # The xyz file holds positions to ~1e-8 Angstrom, so the comparison is to that, not to 1e-12 (ctest does that).
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
