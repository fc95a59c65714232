"""CPU seconds used by a process tree over time (Linux /proc), for benches on a shared machine.

Wall-clock rates swing with other people's load; the CPU time a job spends per window does not (much).
``CpuMeter`` samples the bench process and all its descendants (the Flink mini-cluster JVM, its Python
workers, a REST server) every ``interval_s``; ``cpu_between(t0_ms, t1_ms)`` gives the CPU seconds the
tree used between two wall-clock instants (processes that ended keep their last sample).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after 'pid (comm) '
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


class CpuMeter:
    def __init__(self, root: int | None = None, interval_s: float = 0.2):
        self.root = root or os.getpid()
        self.interval_s = interval_s
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self.samples: list[tuple[int, float]] = []  # (wall ms, CPU s of the tree since start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> dict[int, float]:
        procs = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                got = _stat(int(entry.name))
                if got:
                    procs[int(entry.name)] = got
        keep, frontier = {}, {self.root}
        while frontier:
            pid = frontier.pop()
            if pid in procs:
                keep[pid] = procs[pid][1]
                frontier |= {p for p, (ppid, _) in procs.items() if ppid == pid and p not in keep}
        return keep

    def _sample(self) -> None:
        for pid, cpu in self._tree().items():
            self._base.setdefault(pid, cpu if not self.samples else 0.0)
            self._last[pid] = cpu
        total = sum(self._last[p] - self._base[p] for p in self._last)
        self.samples.append((int(time.time() * 1000), total))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def cpu_at(self, t_ms: int) -> float:
        """CPU seconds since start at wall time ``t_ms`` (linear between samples)."""
        times = [t for t, _ in self.samples]
        i = bisect.bisect_left(times, t_ms)
        if i <= 0:
            return self.samples[0][1]
        if i >= len(times):
            return self.samples[-1][1]
        (t0, c0), (t1, c1) = self.samples[i - 1], self.samples[i]
        return c0 + (c1 - c0) * (t_ms - t0) / max(t1 - t0, 1)

    def cpu_between(self, t0_ms: int, t1_ms: int) -> float:
        return self.cpu_at(t1_ms) - self.cpu_at(t0_ms)
