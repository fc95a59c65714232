"""Refit the hydro detectors (ARIMA + KMeans++ states + Markov matrix) per sensor and promote on validation.

Schedule: cron from ``SG_HYDRO_REFIT_CRON`` (default ``@daily``). Each run refits the KMeans++ states, the
transition matrix and the ARIMA parameters; the ARIMA order is re-selected (AIC grid, d by ADF) only every
``order_every_days`` days or when ``reselect_order`` is set, otherwise the production model's order is kept.
Data: the cleaned series (``training.data.cleaned``) when present, else the Logan River-layout folder
``hydro_dir``; the last ``history_days`` days are used. One mapped task per sensor (retries), then promotion
(label-free ``val_mae``) and the ``HYDRO_MODELS`` Asset, which triggers the scoring redeploy.

Water temperature (``use_temperature``, default ``SG_HYDRO_USE_TEMPERATURE``, off): a stage sensor whose site
has ``temp`` readings in the data gets the bench's temperature choice (a ``+ice`` config) and its run and
model version are tagged ``covariate=temp``; such a model is to be served with the stream's
``covariates=stage=temp`` (served without, it is its config without the ice rule). Off by default because
the stream's setting is off by default, and the two are switched together.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from dags.assets import HYDRO_MODELS
from dags.mapped import mapped_results


@dag(
    dag_id="refit_hydro",
    schedule=os.environ.get("SG_HYDRO_REFIT_CRON", "@daily"),
    catchup=False,
    tags=["streamguard", "hydro", "training"],
    params={
        "sensors": Param([], type="array", description="series ids like MainStreet/stage; empty = all found"),
        "variables": Param(["stage"], type="array", description="variables to refit when sensors is empty"),
        "hydro_dir": Param("", type="string", description="Logan River-layout folder; empty = SG_DATA_DIR/hydro"),
        "history_days": Param(60, type="number", minimum=1, description="days of history per refit"),
        "order_every_days": Param(7, type="integer", minimum=1, description="ARIMA order re-selection period"),
        "reselect_order": Param(False, type="boolean", description="force ARIMA order re-selection"),
        "window": Param(30, type="integer", minimum=5, description="sliding window (refit mode)"),
        "detector_config": Param({}, type="object", description="per sensor id, or 'default': a config name "
                                 "of the hydro bench (d2, d2+local, d2+daily, ...) or a dict of detector "
                                 "settings; empty = the config the hydro bench chose for the sensor without its "
                                 "labels (bench_results), else the d2 defaults"),
        "bench_results": Param("", type="string", description="hydro bench JSON whose per-site choice is "
                               "used; empty = bench/results/hydro_bench.json"),
        "use_temperature": Param(os.environ.get("SG_HYDRO_USE_TEMPERATURE", "").strip().lower() in
                                 ("1", "true", "yes", "on"), type="boolean",
                                 description="a stage sensor whose site has water temperature (temp) in the data "
                                 "gets the bench's +ice choice (selected_config_temp) and covariate=temp; serve it "
                                 "with the stream's covariates=stage=temp"),
    },
    doc_md=__doc__,
)
def refit_hydro():
    @task
    def find_sensors() -> list[str]:
        from training.hydro.dag_tasks import sensors_to_refit

        return sensors_to_refit(get_current_context()["params"])

    @task(retries=2, retry_delay=timedelta(seconds=15), max_active_tis_per_dag=max(1, os.cpu_count() or 1))
    def refit(sensor: str) -> dict:
        from training.hydro.dag_tasks import refit_one

        ctx = get_current_context()
        return refit_one(sensor, ctx["params"], ctx["logical_date"])

    @task(outlets=[HYDRO_MODELS])
    def promote(results) -> list[dict]:
        from training.hydro.dag_tasks import promote_all

        return promote_all(mapped_results(results))

    promote(refit.expand(sensor=find_sensors()))


refit_hydro()
