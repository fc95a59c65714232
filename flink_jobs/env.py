"""Flink execution environments: the embedded mini-cluster by default, a remote JobManager by setting.

Python workers must run an interpreter that has pyflink and this package, or they fail with
``No module named pyflink``: this venv's by default, ``SG_FLINK_PYTHON`` on a cluster whose hosts keep
it elsewhere. Under ``flink run`` (what ``flink_jobs.deploy submit`` does) the CLI's context decides where
the job runs; a script started with plain ``python`` and ``SG_FLINK_JOBMANAGER=host:port`` submits there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from serving.settings import Settings, get_settings


def _under_flink_run() -> bool:
    """True in a job started by the ``flink`` CLI, which hands its gateway to the Python driver."""
    return "PYFLINK_GATEWAY_PORT" in os.environ


# JIT of the local gateway JVM (the embedded mini-cluster runs in it): C1 only. A local job is short and
# its Java side light (reading, splitting, parsing lines; Python does the scoring), but C2 kept compiling
# Flink, Beam and gRPC for the whole of a one-minute bench run, ~40 % of a core on a 2-core machine; with
# C1 alone the job's JVM used about half the CPU and the job started ~10 s sooner (docs/streaming.md).
# A standalone cluster (flink_jobs.cluster) keeps the JVM's defaults; SG_FLINK_LOCAL_JVM_ARGS or JVM_ARGS
# override this ("" for the JVM's defaults).
LOCAL_JVM_ARGS = "-XX:TieredStopAtLevel=1"


def _start_local_gateway() -> None:
    """Start PyFlink's gateway JVM (if not yet up) with ``LOCAL_JVM_ARGS``, setting ``JVM_ARGS`` (which
    PyFlink's launcher reads) only for that launch."""
    import pyflink.java_gateway as java_gateway

    if _under_flink_run() or getattr(java_gateway, "_gateway", None) is not None:
        return
    saved = os.environ.get("JVM_ARGS")
    if saved is None:
        os.environ["JVM_ARGS"] = os.environ.get("SG_FLINK_LOCAL_JVM_ARGS", LOCAL_JVM_ARGS)
    try:
        java_gateway.get_gateway()
    finally:
        if saved is None:
            os.environ.pop("JVM_ARGS", None)


def _configuration(settings: Settings, parallelism: int | None, extra: dict[str, str] | None):
    from pyflink.common import Configuration

    _start_local_gateway()
    conf = Configuration()
    if not _under_flink_run() or os.environ.get("SG_FLINK_PYTHON"):
        conf.set_string("python.executable", settings.flink_python)  # else `flink run -pyexec` decides
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("parallelism.default", str(parallelism or settings.flink_parallelism))
    if settings.flink_jobmanager:
        host, _, port = settings.flink_jobmanager.partition(":")
        conf.set_string("execution.target", "remote")
        conf.set_string("rest.address", host)
        conf.set_string("rest.port", port or "8081")
    for key, value in (extra or {}).items():
        conf.set_string(key, value)
    return conf


def batch_table_env(parallelism: int | None = None, settings: Settings | None = None,
                    extra: dict[str, str] | None = None):
    """A TableEnvironment in batch mode; all timestamps are handled in UTC."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    s = settings or get_settings()
    conf = _configuration(s, parallelism, extra)
    env_settings = EnvironmentSettings.new_instance().in_batch_mode().with_configuration(conf).build()
    t_env = TableEnvironment.create(env_settings)
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.get_config().set("parallelism.default", str(parallelism or s.flink_parallelism))
    return t_env


def stream_env(parallelism: int | None = None, settings: Settings | None = None,
               extra: dict[str, str] | None = None):
    """A StreamExecutionEnvironment (DataStream API) using this venv's Python for its workers."""
    from pyflink.datastream import StreamExecutionEnvironment

    s = settings or get_settings()
    conf = _configuration(s, parallelism, extra)
    if s.flink_jobmanager and not _under_flink_run():
        env = _remote_stream_env(s.flink_jobmanager, conf)
    else:
        env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(parallelism or s.flink_parallelism)
    return env


def _remote_stream_env(address: str, conf):
    """A DataStream environment that submits to ``address`` (the local one ignores ``execution.target``).

    The job carries the flink-python jar, which a plain cluster's lib/ lacks (``flink run`` adds it too).
    """
    import pyflink
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.java_gateway import get_gateway

    host, _, port = address.partition(":")
    jars = sorted((Path(pyflink.__file__).parent / "opt").glob("flink-python-*.jar"))
    gateway = get_gateway()
    j_jars = gateway.new_array(gateway.jvm.String, len(jars))
    for i, jar in enumerate(jars):
        j_jars[i] = str(jar)
    j_env = gateway.jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment \
        .createRemoteEnvironment(host, int(port or 8081), conf._j_configuration, j_jars)
    return StreamExecutionEnvironment(j_env)
