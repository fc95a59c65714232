"""Redeploy the Flink scoring jobs when new models are promoted: what changed -> redeploy -> verify health.

Runs when either model Asset is updated (the promote steps of ``train_lstm_ed`` / ``refit_hydro``), or
by hand. Only families with a recorded deployment are touched (start one first with
``python -m flink_jobs.deploy submit --family lstm_ed -- <job options>``). A family whose production
versions equal the running job's is skipped. Redeploy = stop with savepoint, resubmit from it, wait
RUNNING and for the job to report the new versions (``flink_jobs/deploy.py``). A failure fails the task
with the job's exception from the Flink REST API; the savepoint stays recorded, and the retry resumes
from it. The registry being unreachable fails ``what_changed`` and leaves the running jobs alone.

Params: ``families`` (default both), ``jobmanager`` (host:port; empty = SG_FLINK_JOBMANAGER or
127.0.0.1:8081), ``state_dir`` (empty = <work dir>/deploy), ``force``, ``verify_timeout_s``.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from dags.assets import HYDRO_MODELS, LSTM_ED_MODELS


def _params() -> dict:
    return get_current_context()["params"]


@dag(
    dag_id="redeploy_scoring",
    schedule=(LSTM_ED_MODELS | HYDRO_MODELS),
    catchup=False,
    max_active_runs=1,
    tags=["streamguard", "flink", "deploy"],
    params={
        "families": Param(["lstm_ed", "hydro"], type="array", description="model families whose jobs to redeploy"),
        "jobmanager": Param("", type="string", description="host:port of the JobManager REST endpoint"),
        "state_dir": Param("", type="string", description="deployment history folder; empty = <work dir>/deploy"),
        "force": Param(False, type="boolean", description="redeploy even when no production version changed"),
        "verify_timeout_s": Param(60, type="number", description="wait for the job to report the new versions"),
    },
    doc_md=__doc__,
)
def redeploy_scoring():
    @task
    def what_changed() -> list[dict]:
        from flink_jobs import deploy

        p = _params()
        address = deploy.jobmanager_address(p["jobmanager"] or None)
        plan = []
        for family in p["families"]:
            d = deploy.Deployer(address, family, state_dir=p["state_dir"] or None)
            st = d.state()
            if not st.get("job_args") and not st.get("history"):
                print(f"{family}: never deployed here; start it with `python -m flink_jobs.deploy submit "
                      f"--family {family} -- <job options>`")
                continue
            want = deploy.production_versions(family, d._names(st.get("job_args", [])))
            running = d.running_job(st)
            changed = {n: [st.get("versions", {}).get(n), v] for n, v in want.items()
                       if st.get("versions", {}).get(n) != v}
            print(f"{family}: job {running or 'not running'}; production {want}; changed {changed}")
            if changed or not running or p["force"]:
                plan.append({"family": family, "changed": changed, "running": running})
        return plan

    @task(retries=2, retry_delay=timedelta(seconds=20))
    def redeploy(plan: list[dict]) -> list[dict]:
        from flink_jobs import deploy

        p = _params()
        address = deploy.jobmanager_address(p["jobmanager"] or None)
        done = []
        for item in plan:
            d = deploy.Deployer(address, item["family"], state_dir=p["state_dir"] or None)
            entry = d.redeploy(force=bool(p["force"]), verify_timeout_s=float(p["verify_timeout_s"]))
            done.append({"family": item["family"], "job_id": entry["job_id"], "versions": entry["versions"],
                         "action": entry["action"]})
        return done

    @task
    def verify_health(done: list[dict]) -> list[dict]:
        from flink_jobs import deploy

        p = _params()
        rest = deploy.FlinkRest(deploy.jobmanager_address(p["jobmanager"] or None))
        for item in done:
            info = rest.wait_running(item["job_id"], timeout_s=60)
            if rest.exceptions(item["job_id"]):
                raise deploy.DeployError(f"{item['family']} job {item['job_id']} is running but restarted:\n"
                                         f"{rest.exceptions(item['job_id'])}")
            print(f"{item['family']}: job {item['job_id']} {info['state']}, versions {item['versions']}")
        return done

    verify_health(redeploy(what_changed()))


redeploy_scoring()
