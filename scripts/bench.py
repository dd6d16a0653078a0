#!/usr/bin/env python
"""Thin wrapper around `router bench` (same options), for running from a checkout without the entry point.

.venv/bin/python scripts/bench.py --json bench.json
"""

from __future__ import annotations

import sys

from router.cli import app

if __name__ == "__main__":  # the guard matters: worker processes are spawned and re-import this file
    app(["bench", *sys.argv[1:]])
