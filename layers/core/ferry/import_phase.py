"""How a Lambda handler module makes its imports: with the cyclic garbage collector paused.

Importing a handler creates a few hundred thousand objects (modules, classes, functions,
pydantic's schemas) that live as long as the process. While they are made, the collector runs
each time allocations outnumber frees by its threshold: about 125 passes for one deploy task,
which walk those same objects again and again and free next to nothing (35 to 40 ms of a
275 ms import on the bench machine, `make bench`). So the imports run with the collector
paused, and what they made is then frozen into the permanent generation (`gc.freeze`), which
later collections, during invocations, do not walk either. What the imports left as garbage in
cycles stays: a bounded cost, paid once per process.

This module is Ferry's first import in a handler, so it imports nothing beyond the standard
library: everything else loads inside the pause.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector paused for the block; what exists at its end frozen, the collector back
    as it was (a nested or repeated use freezes again, which is harmless)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
