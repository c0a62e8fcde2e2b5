"""Where the repository and the stack's local state live."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


def state_dir() -> Path:
    """Local state (keys, pids, logs): HOMEVISITS_STATE_DIR, else .local/ in the repo."""
    d = Path(os.environ.get("HOMEVISITS_STATE_DIR") or REPO / ".local")
    d.mkdir(parents=True, exist_ok=True)
    return d
