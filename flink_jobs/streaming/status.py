"""The scoring operator's status file, read by deploy tooling (contract: docs/streaming.md, "Status files").

``<status_dir>/<family>-<subtask>.json``, rewritten atomically (tmp file + ``os.replace``) in ``open()``
and whenever the operator loads, swaps or drops a model or the registry becomes (un)reachable::

    {"family": "lstm_ed", "subtask": 0, "attempt": 0, "started_ms": ..., "updated_ms": ...,
     "registry_reachable": true, "models": {"lstm_ed-machine-1-2": {"version": "3", "source": "registry"}}}

In process mode PyFlink opens a Python operator when its first bundle of data arrives, so a subtask
that has seen no data yet has no file (thread mode opens it when the task starts). ``registry_reachable`` is null until the operator first asked the registry; ``source`` is ``registry``
(loaded from it, possibly kept in memory during an outage) or ``disk_cache`` (the on-disk copy).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


class StatusFile:
    def __init__(self, status_dir: str | Path, family: str, subtask: int, attempt: int = 0):
        self.path = Path(status_dir) / f"{family}-{subtask}.json"
        self.record = {"family": family, "subtask": int(subtask), "attempt": int(attempt),
                       "started_ms": int(time.time() * 1000), "updated_ms": None,
                       "registry_reachable": None, "models": {}}

    def update(self, cache) -> None:
        """Take the served models and reachability from a ``ModelCache`` and rewrite the file."""
        self.record["models"] = cache.snapshot()
        self.record["registry_reachable"] = cache.registry_reachable
        self.write()

    def write(self) -> None:
        self.record["updated_ms"] = int(time.time() * 1000)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.record, sort_keys=True))
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk must not stop scoring
            log.warning("could not write status file %s: %s", self.path, exc)


def read_status(status_dir: str | Path) -> dict[str, dict]:
    """All status files of a folder: '<family>-<subtask>' -> record."""
    out = {}
    for p in sorted(Path(status_dir).glob("*.json")):
        try:
            out[p.stem] = json.loads(p.read_text())
        except (OSError, ValueError):  # being replaced right now: os.replace makes this rare
            continue
    return out
