"""Pluggable line sources: every source gives the job a DataStream of text lines, or of blocks of lines
joined by '\\n' (``blocks.py`` splits them per series).

``cfg.source`` picks one, with no change to the rest of the job:

- ``file`` (default): a Flink ``FileSource`` over ``cfg.landing_dir``; continuous (re-lists the folder
  every ``discovery_interval_ms`` and reads each new file once) or, with ``bounded``, the files present
  at start. In continuous mode each discovery stats only files it has not seen and lists a folder only
  when its modification time changed (``incremental``; Java ``IncrementalFileEnumerator``): Flink's own
  enumerator re-reads the status of every file ever landed, so its cost grows with the folder. Writers must publish complete files atomically (write ``.name``, then rename): files
  starting with ``.`` or ``_`` are ignored by the enumerator. One reader (parallelism 1) reads the
  files one after another; with ``ordered_files`` (default) queued files are handed out in path order
  (``ordered_files.py``), so writers name files so that path order is publication order (as
  ``flink_jobs.replay`` does). Without it (or without a JDK to build the assigner) files found in the
  same listing come in no defined order. Each record is a block of up to ``line_block`` lines of one
  file (Java ``LineBatchFormat``; one line per record without a JDK or with ``line_block`` 1).
- ``kafka``: Flink's ``KafkaSource`` on ``kafka_topic`` at ``kafka_bootstrap`` (values are the lines).
  Needs the connector jar (``flink-sql-connector-kafka-*.jar``) in ``cfg.jars`` / ``SG_STREAM_JARS``.
  Partition the topic by series id: order is kept per partition.

A source's ``parallelism`` (None: the job's) is also used for the parse operator, which is chained to it
(forward), so the rows of one series reach the keyed operators in the order the source read them.
- ``package.module:function``: your own factory ``function(cfg) -> LineSource``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from pyflink.common import Duration, WatermarkStrategy

from flink_jobs.streaming.config import StreamConfig

SOURCE_UID = "landing-source"


@dataclass
class FileLineSource:
    path: str
    discovery_interval_ms: int | None = 1000  # None: bounded (read what is there, then finish)
    parallelism: int | None = 1
    ordered: bool = True  # hand out queued files in path order (Java assigner; Flink's default without a JDK)
    incremental: bool = True  # list known files by name only (Java enumerator; Flink's default without a JDK)
    line_block: int = 4096  # lines per record (Java line-block format); 1: one record per line


    def stream(self, env):
        from pyflink.datastream.connectors.file_system import FileSource, StreamFormat

        Path(self.path).mkdir(parents=True, exist_ok=True)
        fmt = None
        if self.line_block > 1:
            from flink_jobs.streaming.ordered_files import line_batch_format

            fmt = line_batch_format(env, self.line_block)
        fmt = fmt or StreamFormat.text_line_format()
        builder = FileSource.for_record_stream_format(fmt, Path(self.path).as_uri())
        if self.discovery_interval_ms:
            builder = builder.monitor_continuously(Duration.of_millis(self.discovery_interval_ms))
        if self.incremental and self.discovery_interval_ms:
            from flink_jobs.streaming.ordered_files import incremental_file_enumerator

            enumerator = incremental_file_enumerator(env)
            if enumerator is not None:
                builder = builder.set_file_enumerator(enumerator)
        if self.ordered:
            from flink_jobs.streaming.ordered_files import ordered_split_assigner

            provider = ordered_split_assigner(env)
            if provider is not None:
                builder = builder.set_split_assigner(provider)
        # event time is handled per series in the keyed operators, not with source watermarks
        stream = env.from_source(builder.build(), WatermarkStrategy.no_watermarks(), "landing").uid(SOURCE_UID)
        return stream.set_parallelism(self.parallelism) if self.parallelism else stream


@dataclass
class KafkaLineSource:
    bootstrap: str
    topic: str
    group: str
    parallelism: int | None = None

    def stream(self, env):
        from pyflink.common.serialization import SimpleStringSchema
        from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource

        source = (
            KafkaSource.builder()
            .set_bootstrap_servers(self.bootstrap)
            .set_topics(self.topic)
            .set_group_id(self.group)
            .set_starting_offsets(KafkaOffsetsInitializer.earliest())
            .set_value_only_deserializer(SimpleStringSchema())
            .build()
        )
        return env.from_source(source, WatermarkStrategy.no_watermarks(), "kafka").uid(SOURCE_UID)


def source_from_config(cfg: StreamConfig):
    """The LineSource named by ``cfg.source``."""
    if cfg.source == "file":
        return FileLineSource(cfg.landing_dir, None if cfg.bounded else cfg.discovery_interval_ms,
                              ordered=cfg.ordered_files, incremental=cfg.incremental_listing,
                              line_block=cfg.line_block)
    if cfg.source == "kafka":
        return KafkaLineSource(cfg.kafka_bootstrap, cfg.kafka_topic, cfg.kafka_group)
    if ":" in cfg.source:
        module, _, func = cfg.source.partition(":")
        return getattr(importlib.import_module(module), func)(cfg)
    raise ValueError(f"unknown source {cfg.source!r}: use 'file', 'kafka' or 'package.module:function'")
