"""Batch cleaning of every raw source on Flink; publishes the cleaned-data Asset that training schedules on.

Params: ``raw_dirs`` (list of raw source folders; default: every folder with a source.json under the
settings' raw dir) and ``out_dir`` (default: the settings' cleaned dir). A rerun replaces a source's
output as a whole, never appends.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from dags.assets import CLEANED_DATA
from dags.mapped import mapped_results


@dag(
    dag_id="clean_data",
    schedule=None,
    catchup=False,
    tags=["streamguard", "flink", "cleaning"],
    params={
        "raw_dirs": Param([], type="array", description="raw source folders; empty = all under SG_RAW_DIR"),
        "out_dir": Param("", type="string", description="cleaned output root; empty = SG_CLEANED_DIR"),
    },
    doc_md=__doc__,
)
def clean_data():
    @task
    def find_sources() -> list[str]:
        from serving.settings import get_settings

        params = get_current_context()["params"]
        if params["raw_dirs"]:
            return [str(p) for p in params["raw_dirs"]]
        root = get_settings().raw_dir
        found = sorted(str(p.parent) for p in root.glob("*/source.json"))
        if not found:
            raise FileNotFoundError(f"no raw sources (folders with source.json) under {root}; run `make demo` "
                                    "or write raw files there first")
        return found

    @task(retries=2, retry_delay=timedelta(seconds=20), max_active_tis_per_dag=1)
    def clean(raw_dir: str) -> dict:
        from flink_jobs.clean_job import run

        out = get_current_context()["params"]["out_dir"] or None
        report = run(raw_dir, out)
        return {"source": report["source"], "counts": report["counts"], "total_seconds": report["total_seconds"]}

    @task(outlets=[CLEANED_DATA])
    def publish(reports) -> list[dict]:
        from flink_jobs.clean_job import format_report

        reports = mapped_results(reports)
        print(format_report(reports))
        return reports

    publish(clean.expand(raw_dir=find_sources()))


clean_data()
