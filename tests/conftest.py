import os
import sys
from pathlib import Path

import pytest

# Test utilities (tests/equivariance.py) are imported as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


# Tests run on 2 cores; keep PySCF and OpenMP from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "2")
