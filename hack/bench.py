#!/usr/bin/env python3
"""Run `tablekeeper bench` from a checkout: ``hack/bench.py --endpoint http://127.0.0.1:8000``."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tablekeeper.bench import main
except ImportError:  # not installed: use the checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
    from tablekeeper.bench import main

if __name__ == "__main__":
    sys.exit(main())
