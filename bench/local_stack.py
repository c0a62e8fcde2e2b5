"""The local stack a bench runs against, started in this process."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def running_stack(prefix: str) -> Iterator:
    """An ephemeral local stack (fresh state directory, free ports), this process's environment
    pointed at it and the settings read again (the code under test reads its environment once);
    stopped and the environment put back afterwards."""
    from devstack.stack import Stack
    from homevisits import settings

    stack = Stack.ephemeral(Path(tempfile.mkdtemp(prefix=prefix)))
    saved = dict(os.environ)
    stack.start()
    os.environ.update(stack.env)
    settings.reload()
    try:
        yield stack
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        settings.reload()
