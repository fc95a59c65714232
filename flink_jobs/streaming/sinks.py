"""Exactly-once JSON-lines file sinks: alerts, optional every-window scores, dead letters.

Row-format ``FileSink`` with the on-checkpoint rolling policy: part files are written in-progress
(hidden) and committed when a checkpoint completes (or at the end of a bounded input), so after a
failure and restore every record appears once. Readers take only visible ``*.jsonl`` files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


def _file_sink(path: Path, prefix: str):
    from pyflink.common.serialization import Encoder
    from pyflink.datastream.connectors.file_system import (
        BucketAssigner,
        FileSink,
        OutputFileConfig,
        RollingPolicy,
    )

    path.mkdir(parents=True, exist_ok=True)
    return (
        FileSink.for_row_format(path.as_uri(), Encoder.simple_string_encoder("UTF-8"))
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
        .with_output_file_config(OutputFileConfig.builder().with_part_prefix(prefix).with_part_suffix(".jsonl").build())
        .build()
    )


@dataclass
class FileSinks:
    out_dir: str

    def attach(self, alerts, scores, dead) -> None:
        out = Path(self.out_dir)
        alerts.sink_to(_file_sink(out / "alerts", "alerts")).name("alerts").uid("alerts-sink")
        if scores is not None:
            scores.sink_to(_file_sink(out / "scores", "scores")).name("scores").uid("scores-sink")
        dead.sink_to(_file_sink(out / "dead_letters", "dead")).name("dead-letters").uid("dead-letters-sink")


def read_records(folder: str | Path) -> list[dict]:
    """All committed records under ``folder`` (in-progress and hidden part files are skipped)."""
    recs = []
    for p in sorted(Path(folder).glob("*.jsonl")):
        if p.name.startswith((".", "_")):
            continue
        recs += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return recs
