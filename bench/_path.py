"""Take this folder off the import path of a benchmark script run by its path.

``python bench/<script>.py`` puts ``bench/`` first on ``sys.path``, where
``bench/explain.py`` would shadow the ``explain`` package; each script imports
this module before any of the project's.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
