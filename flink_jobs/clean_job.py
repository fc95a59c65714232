"""Batch cleaning of raw line files on Flink (Table API / SQL, batch mode).

    python -m flink_jobs.clean_job --raw var/raw/smd --out var/cleaned

Reads every line file of a raw source folder (``source.json`` says what to expect), normalises
timestamps to UTC epoch ms, turns no-data codes into gaps, drops exact duplicates, rejects
conflicting readings of one timestamp (rule: when two readings of the same instant disagree we
cannot tell which is right, so neither is kept and the instant becomes a gap; both rows go to the
rejects with reason ``conflicting_duplicate``), drops unconfigured series, marks gaps, and writes:

- ``<out>/<source>/<series>.csv``: ``ts,<values...>,gap_before`` sorted by ``ts``, one file per series;
- ``<out>/<source>/rejects.jsonl``: ``{"source", "reason", "line"}`` for every row not kept;
- ``<out>/<source>/report.json``: counts per defect.

A rerun replaces the source's output as a whole (written aside, then swapped in).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import uuid
from pathlib import Path

from flink_jobs import clean_sql
from serving.settings import get_settings
from serving.sources import SourceConfig, series_file_name

REPORT_KEYS = (*clean_sql.REASONS, "duplicate", "conflicting_duplicate", "gaps", "rows_in", "rows_out", "series_out")


def _file_uri(path: Path) -> str:
    return path.resolve().as_uri()


def build(t_env, cfg: SourceConfig, raw_dir: Path, staging: Path):
    """Register the job's tables and views; return a StatementSet writing cleaned rows, rejects and counts."""
    vc = clean_sql.value_cols(cfg)
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE raw_lines (line STRING) WITH ('connector' = 'filesystem', "
        f"'path' = '{_file_uri(raw_dir / 'lines')}', 'format' = 'raw', 'source.path.regex-pattern' = '.*[.](csv|txt|jsonl?)$')"
    )
    for name, sql in (("parsed", clean_sql.parsed_view(cfg)), ("classified", clean_sql.classified_view(cfg)),
                      ("readings", clean_sql.readings_view(cfg)), ("instants", clean_sql.instants_view(cfg))):
        t_env.create_temporary_view(name, t_env.sql_query(sql))
    value_ddl = ", ".join(f"v{i} DOUBLE" for i in range(cfg.n_values))
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE cleaned_sink (ts BIGINT, {value_ddl}, gap_before BOOLEAN, series_id STRING) "
        f"PARTITIONED BY (series_id) WITH ('connector' = 'filesystem', 'path' = '{_file_uri(staging / 'series')}', "
        f"'format' = 'csv', 'sink.shuffle-by-partition.enable' = 'true')"
    )
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE rejects_sink (source STRING, reason STRING, line STRING) WITH ("
        f"'connector' = 'filesystem', 'path' = '{_file_uri(staging / 'rejects')}', 'format' = 'json')"
    )
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE report_sink (metric STRING, n BIGINT) WITH ("
        f"'connector' = 'filesystem', 'path' = '{_file_uri(staging / 'report')}', 'format' = 'csv')"
    )
    gap_ms = int(cfg.interval_ms * 1.5)
    src = clean_sql._q(cfg.name)
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        f"INSERT INTO cleaned_sink SELECT ts, {vc}, COALESCE(ts - LAG(ts) OVER (PARTITION BY series_id ORDER BY ts) "
        f"> {gap_ms}, FALSE), series_id FROM instants WHERE readings = 1"
    )
    statements.add_insert_sql(
        f"INSERT INTO rejects_sink SELECT {src}, reason, line FROM classified WHERE reason IS NOT NULL "
        f"UNION ALL SELECT {src}, 'conflicting_duplicate', l FROM instants "
        f"CROSS JOIN UNNEST(SPLIT(lines, {clean_sql.LINE_SEP})) AS t(l) WHERE readings > 1"
    )
    statements.add_insert_sql(
        "INSERT INTO report_sink SELECT reason, COUNT(*) FROM classified WHERE reason IS NOT NULL GROUP BY reason "
        "UNION ALL SELECT 'rows_in', COUNT(*) FROM classified "
        "UNION ALL SELECT 'duplicate', CAST(COALESCE(SUM(duplicates), 0) AS BIGINT) FROM instants WHERE readings = 1 "
        "UNION ALL SELECT 'conflicting_duplicate', CAST(COALESCE(SUM(readings), 0) AS BIGINT) FROM instants "
        "WHERE readings > 1"
    )
    return statements


def _finalize(cfg: SourceConfig, staging: Path, final: Path, report_extra: dict) -> dict:
    """Compact each series' part files into one sorted CSV; gather rejects and the report."""
    from urllib.parse import unquote

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    columns = ["ts", *cfg.value_names, "gap_before"]
    rows_out = gaps = series_out = 0
    types = {"ts": pa.int64(), "gap_before": pa.bool_(), **{n: pa.float64() for n in cfg.value_names}}
    for part_dir in sorted((staging / "series").glob("series_id=*")):
        series_id = unquote(part_dir.name.split("=", 1)[1])
        parts = sorted(p for p in part_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        tables = [
            pcsv.read_csv(p, read_options=pcsv.ReadOptions(column_names=columns),
                          convert_options=pcsv.ConvertOptions(column_types=types))
            for p in parts
        ]
        table = pa.concat_tables(tables).sort_by("ts")
        pcsv.write_csv(table, final / f"{series_file_name(series_id)}.csv")
        rows_out += table.num_rows
        gaps += int(pc.sum(table["gap_before"]).as_py() or 0)
        series_out += 1
    with open(final / "rejects.jsonl", "wb") as out:
        for p in sorted((staging / "rejects").glob("*")):
            if p.is_file() and not p.name.startswith("."):
                out.write(p.read_bytes())
    counts = dict.fromkeys(REPORT_KEYS, 0)
    for p in (staging / "report").glob("*"):
        if p.is_file() and not p.name.startswith("."):
            for row in p.read_text().splitlines():
                metric, _, n = row.rpartition(",")
                if metric:
                    counts[metric.strip('"')] = int(n)
    counts.update(rows_out=rows_out, gaps=gaps, series_out=series_out)
    report = {"source": cfg.name, "counts": counts, **report_extra}
    (final / "report.json").write_text(json.dumps(report, indent=2))
    return report


def run(raw_dir: str | Path, out_dir: str | Path | None = None, parallelism: int | None = None, t_env=None) -> dict:
    """Clean one raw source folder; returns the report (also written as ``report.json``)."""
    from flink_jobs.env import batch_table_env

    raw_dir = Path(raw_dir)
    cfg = SourceConfig.load(raw_dir)
    if not (raw_dir / "lines").is_dir():
        raise FileNotFoundError(f"{raw_dir / 'lines'} not found: put the raw line files of source {cfg.name!r} there")
    out_root = Path(out_dir) if out_dir else get_settings().cleaned_dir
    out_root.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    staging = out_root / f".{cfg.name}.staging-{token}"
    building = out_root / f".{cfg.name}.building-{token}"
    building.mkdir()
    started = time.perf_counter()
    try:
        env = t_env or batch_table_env(parallelism=parallelism)
        build(env, cfg, raw_dir, staging).execute().wait()
        flink_s = time.perf_counter() - started
        report = _finalize(cfg, staging, building, {"flink_seconds": round(flink_s, 3)})
        report["total_seconds"] = round(time.perf_counter() - started, 3)
        (building / "report.json").write_text(json.dumps(report, indent=2))
        final = out_root / cfg.name
        old = out_root / f".{cfg.name}.old-{token}"
        if final.exists():
            final.rename(old)
        building.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(building, ignore_errors=True)
        if t_env is not None:
            for name in ("raw_lines", "cleaned_sink", "rejects_sink", "report_sink"):
                t_env.execute_sql(f"DROP TEMPORARY TABLE IF EXISTS {name}")
            for name in ("parsed", "classified", "readings", "instants"):
                t_env.drop_temporary_view(name)


def format_report(reports: list[dict]) -> str:
    """A markdown table: one column per source, one row per count."""
    head = "| count | " + " | ".join(r["source"] for r in reports) + " |"
    sep = "|---|" + "---:|" * len(reports)
    rows = [f"| {k} | " + " | ".join(f"{r['counts'].get(k, 0):,}" for r in reports) + " |" for k in REPORT_KEYS]
    rows.append("| seconds | " + " | ".join(f"{r.get('total_seconds', 0):.1f}" for r in reports) + " |")
    return "\n".join([head, sep, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Clean a raw source folder (source.json + lines/*.csv) on Flink in batch mode. "
        "Runs on the embedded mini-cluster unless SG_FLINK_JOBMANAGER=host:port names a remote cluster."
    )
    parser.add_argument("--raw", required=True, nargs="+", help="raw source folder(s), each with source.json and lines/")
    parser.add_argument("--out", default=None, help="cleaned output root (default: settings cleaned_dir)")
    parser.add_argument("--parallelism", type=int, default=None, help="Flink parallelism (default: SG_FLINK_PARALLELISM)")
    args = parser.parse_args(argv)
    reports = [run(r, args.out, args.parallelism) for r in args.raw]
    print(format_report(reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
