"""Helpers for tests that run continuous Flink jobs: wait for sink records, stop a job with a savepoint."""

from __future__ import annotations

import time
from pathlib import Path

from flink_jobs.streaming.sinks import read_records


def wait_for_records(folder: Path | str, n: int, timeout_s: float = 120) -> list[dict]:
    """The committed records in ``folder`` once there are at least ``n`` (or whatever is there at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        recs = read_records(folder)
        if len(recs) >= n or time.monotonic() > deadline:
            return recs
        time.sleep(0.5)


def stop_with_savepoint(client, directory: str) -> str:
    """Stop the job with a canonical savepoint in ``directory`` (a URI); returns the savepoint's path."""
    # PyFlink 2.3's JobClient.stop_with_savepoint calls a Java signature that no longer exists
    from pyflink.java_gateway import get_gateway

    fmt = get_gateway().jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    return str(client._j_job_client.stopWithSavepoint(False, directory, fmt).get())
