#!/usr/bin/env python
"""Thin wrapper around `router simulate` (same options), for running from a checkout without the entry point.

.venv/bin/python scripts/simulate.py --contacts 2000 --seed 7 --json r.json --plots plots/
.venv/bin/python scripts/simulate.py --scenario burst --compare --json compare.json --plots plots/
"""

from __future__ import annotations

import sys

from router.cli import app

if __name__ == "__main__":  # the guard matters: worker processes are spawned and re-import this file
    app(["simulate", *sys.argv[1:]])
