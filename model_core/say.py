"""One-line stage messages on stderr for the long steps of ``export``, ``adapt`` and ``evaluate`` (a minute or more
with nothing said looked hung)."""
from __future__ import annotations

import sys


def stage(what: str) -> None:
    """Say on stderr which long step starts now (flushed: it must show before the step, not after)."""
    print(f"model_core: {what} ...", file=sys.stderr, flush=True)
