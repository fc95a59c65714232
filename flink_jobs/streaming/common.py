"""Side-output tags and Flink metric counters shared by the operators of both jobs."""

from __future__ import annotations

from pyflink.common import Types
from pyflink.datastream import OutputTag

DEAD = OutputTag("dead-letters", Types.STRING())  # JSON dead-letter records
SCORES = OutputTag("scores", Types.STRING())  # every scored window/point (setting every_window)
METRIC_GROUP = "streamguard"


class Counters:
    """Named Flink counters under the ``streamguard`` metric group, created on first use.

    ``dead_letters`` counts all dead letters; ``dead_letters_<reason>`` one reason each.
    """

    def __init__(self, runtime_context):
        self._group = runtime_context.get_metrics_group().add_group(METRIC_GROUP)
        self._counters = {}
        self.local: dict[str, int] = {}  # the same counts, readable in-process (logs, tests)

    def inc(self, name: str, n: int = 1) -> None:
        c = self._counters.get(name)
        if c is None:
            c = self._counters[name] = self._group.counter(name)
        c.inc(n)
        self.local[name] = self.local.get(name, 0) + n

    def dead(self, reason: str) -> None:
        self.inc("dead_letters")
        self.inc(f"dead_letters_{reason}")
