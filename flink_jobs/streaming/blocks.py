"""Source records -> per-series blocks of lines, keyed by series, for the jobs' keyed operators.

A source record is one landing line, or (file source with the line-block format) a block of lines joined
by '\\n'. ``split_by_series`` cuts a record into one block per series, keeping each series' lines in the
order read, so the keyed operator takes a whole block of one series per call: the per-record costs of
PyFlink (hand-over between Java and Python, keyed-state read and write, timers) are paid once per block,
not once per line. A one-line record is a block of one line: a Kafka source needs nothing else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from pyflink.common import Types

from flink_jobs.streaming.records import Row, series_key

BLOCK = Types.TUPLE([Types.STRING(), Types.STRING()])


class ParsedRows(NamedTuple):
    """Rows of one series as arrays: ``ts`` (n,) epoch ms, ``values`` (n, C) float64, ``ingest`` (n,) ms;
    ``raw``: ``(place in the block, line)`` of the lines left to Python's parser."""

    ts: np.ndarray
    values: np.ndarray
    ingest: np.ndarray
    raw: list

    def in_order(self, series_id: str) -> list:
        """Rows and raw lines in the block's read order (the row-by-row path)."""
        out, k = [], 0
        raw = dict(self.raw)
        for place in range(len(self.ts) + len(self.raw)):
            if place in raw:
                out.append(raw[place])
            else:
                out.append(Row(series_id, int(self.ts[k]), tuple(self.values[k].tolist()), int(self.ingest[k])))
                k += 1
        return out


def n_rows(rows) -> int:
    """How many rows: a list of Rows or ``ParsedRows``."""
    return len(rows.ts) if isinstance(rows, ParsedRows) else len(rows)


def row_list(rows, series_id: str) -> list:
    """Rows as a list of ``Row`` (the rare paths that handle rows one by one)."""
    return rows.in_order(series_id) if isinstance(rows, ParsedRows) else rows


def decode_block(block: bytes, n_values: int, now_ms: int | None = None) -> ParsedRows:
    """The parsing splitter's bytes (layout in ``SeriesBlockSplitter.ParsedBlock``) -> ``ParsedRows``; the
    rows' ``ingest`` is the time the splitter cut the block (``now_ms`` instead, if given)."""
    n, m = np.frombuffer(block, dtype="<i4", count=2)
    (cut_ms,) = np.frombuffer(block, dtype="<i8", count=1, offset=8)
    off, raw = 16, []
    for _ in range(int(m)):
        place, size = np.frombuffer(block, dtype="<i4", count=2, offset=off)
        raw.append((int(place), bytes(block[off + 8 : off + 8 + int(size)]).decode("utf-8")))
        off += 8 + int(size)
    off += (8 - off % 8) % 8
    ts = np.frombuffer(block, dtype="<i8", count=int(n), offset=off)
    values = np.frombuffer(block, dtype="<f8", count=int(n) * n_values, offset=off + 8 * int(n))
    now = int(cut_ms) if now_ms is None else now_ms
    return ParsedRows(ts, values.reshape(int(n), n_values), np.full(int(n), now, dtype=np.int64), raw)


def split_by_series(record: str) -> list[tuple[str, str]]:
    """``(series id, lines of that series joined by '\\n')`` per series in ``record``, first seen first."""
    if "\n" not in record:
        return [(series_key(record), record)]
    groups: dict[str, list[str]] = {}
    for line in record.split("\n"):
        groups.setdefault(series_key(line), []).append(line)
    return [(key, "\n".join(lines)) for key, lines in groups.items()]


def covariate_routes(pairs) -> dict[str, tuple[str, ...]]:
    """``("stage=temp", ...)`` (dependent variable = covariate variable) -> {covariate: (dependents, ...)}."""
    routes: dict[str, tuple[str, ...]] = {}
    for pair in pairs:
        dependent, sep, covariate = (x.strip() for x in pair.partition("="))
        if not (sep and dependent and covariate) or "/" in dependent + covariate or dependent == covariate:
            raise ValueError(f"covariate route {pair!r}: expected 'dependent=covariate', e.g. 'stage=temp'")
        routes[covariate] = routes.get(covariate, ()) + (dependent,)
    return routes


def with_covariate_copies(blocks: list[tuple[str, str]], routes: dict) -> list[tuple[str, str]]:
    """``blocks`` (``split_by_series``) plus, first, a copy of each covariate sensor's block
    (``<site>/<covariate>``) keyed by each of its dependents (``<site>/<dependent>``): a dependent row then finds
    the covariate readings of its own record. The copy keeps its lines (their own series id)."""
    copies = []
    for key, lines in blocks:
        site, slash, variable = key.rpartition("/")
        if site and slash:
            copies += [(f"{site}/{dependent}", lines) for dependent in routes.get(variable, ())]
    return copies + blocks


def lines_of(block) -> list[str]:
    """The lines of a keyed operator's input element: the lines string (Java split) or a
    ``(series id, lines)`` tuple (Python split)."""
    return (block if isinstance(block, str) else block[1]).split("\n")


def keyed_series_blocks(env, records, java: bool = True, parse: tuple | None = None, covariates=()):
    """``records`` (a DataStream of strings) -> KeyedStream of per-series blocks (``lines_of`` reads them;
    ``ctx.get_current_key()`` is the series id).

    The split runs with the source's parallelism, forward (chained to it), so a series' lines reach its
    keyed operator in the order the source read them. ``java``: split with the Java twin
    (``SeriesBlockSplitter``) and key on the Java side, as PyFlink's own ``key_by`` does after its key
    step; without a JDK, or with ``java=False``, Python ``split_by_series`` + ``key_by`` (one more
    Java-Python hand-over per block). ``parse``: ``(n_values, nodata codes, accepted series)``: the Java
    splitter also parses (``decode_block`` reads its blocks); the Python splitter ignores it.
    ``covariates``: ``("stage=temp", ...)``: each ``<site>/temp`` block also goes to ``<site>/stage``
    (``with_covariate_copies``); empty (default): no copies, the split is unchanged.
    """
    parallelism = records._j_data_stream.getTransformation().getParallelism()
    routes = covariate_routes(covariates)
    splitter = None
    if java:
        from flink_jobs.streaming.ordered_files import series_block_splitter

        splitter = series_block_splitter(env, *(parse or ()))
        if splitter is not None and routes:
            splitter = _with_java_routes(splitter, routes)
    if splitter is None:
        split = split_by_series if not routes else lambda r: with_covariate_copies(split_by_series(r), routes)
        blocks = records.flat_map(split, output_type=BLOCK).name("split-by-series")
        if parallelism > 0:
            blocks = blocks.set_parallelism(parallelism)
        return blocks.key_by(lambda block: block[0], key_type=Types.STRING())
    from pyflink.datastream.data_stream import DataStream, KeyedStream
    from pyflink.java_gateway import get_gateway

    j_blocks = records._j_data_stream.flatMap(splitter).name("split-by-series")
    if parallelism > 0:
        j_blocks = j_blocks.setParallelism(parallelism)
    # what DataStream.key_by builds after its Python key step: Row(key, value) keyed on field 0, the
    # keyed operator then sees the value (the lines) alone
    j_keyed = j_blocks.keyBy(get_gateway().jvm.KeyByKeySelector(), Types.ROW([Types.STRING()]).get_java_type_info())
    value_type = Types.PRIMITIVE_ARRAY(Types.BYTE()) if parse else Types.STRING()
    return KeyedStream(j_keyed, value_type, DataStream(j_blocks))


def _with_java_routes(splitter, routes: dict):
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    pairs = [(c, d) for c, deps in routes.items() for d in deps]
    covs = gateway.new_array(gateway.jvm.java.lang.String, len(pairs))
    deps = gateway.new_array(gateway.jvm.java.lang.String, len(pairs))
    for i, (c, d) in enumerate(pairs):
        covs[i], deps[i] = c, d
    return splitter.withCovariates(covs, deps)
