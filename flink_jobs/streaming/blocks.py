"""Source records -> per-series blocks of lines, keyed by series, for the jobs' keyed operators.

A source record is one landing line, or (file source with the line-block format) a block of lines joined
by '\\n'. ``split_by_series`` cuts a record into one block per series, keeping each series' lines in the
order read, so the keyed operator takes a whole block of one series per call: the per-record costs of
PyFlink (hand-over between Java and Python, keyed-state read and write, timers) are paid once per block,
not once per line. A one-line record is a block of one line: a Kafka source needs nothing else.
"""

from __future__ import annotations

from pyflink.common import Types

from flink_jobs.streaming.records import series_key

BLOCK = Types.TUPLE([Types.STRING(), Types.STRING()])


def split_by_series(record: str) -> list[tuple[str, str]]:
    """``(series id, lines of that series joined by '\\n')`` per series in ``record``, first seen first."""
    if "\n" not in record:
        return [(series_key(record), record)]
    groups: dict[str, list[str]] = {}
    for line in record.split("\n"):
        groups.setdefault(series_key(line), []).append(line)
    return [(key, "\n".join(lines)) for key, lines in groups.items()]


def lines_of(block) -> list[str]:
    """The lines of a keyed block (the operators' input element)."""
    return block[1].split("\n")


def keyed_series_blocks(records):
    """``records`` (a DataStream of strings) -> KeyedStream of (series id, lines) blocks.

    The split runs with the source's parallelism, forward (chained), and PyFlink chains the key-by step to
    it: a series' lines reach its keyed operator in the order the source read them.
    """
    blocks = records.flat_map(split_by_series, output_type=BLOCK).name("split-by-series")
    parallelism = records._j_data_stream.getTransformation().getParallelism()
    if parallelism > 0:
        blocks = blocks.set_parallelism(parallelism)
    return blocks.key_by(lambda block: block[0], key_type=Types.STRING())
