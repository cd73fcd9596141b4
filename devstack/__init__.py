"""Development tooling, kept apart from the app: it starts Pushpin, the app and the
publisher for `make run`, the tests and the benchmarks, and reads their streams.

The app packages never import it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
