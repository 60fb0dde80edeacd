import os
import sys
from pathlib import Path

# Test utilities (tests/equivariance.py, tests/threads.py) are imported as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

# Tests run on 2 cores; keep PySCF and OpenMP from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "2")
