"""Flink execution environments: the embedded mini-cluster by default, a remote JobManager by setting.

Python workers must run this venv's interpreter, or they fail with ``No module named pyflink``.
"""

from __future__ import annotations

import sys

from serving.settings import Settings, get_settings


def _configuration(settings: Settings, parallelism: int | None, extra: dict[str, str] | None):
    from pyflink.common import Configuration

    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
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
    env = StreamExecutionEnvironment.get_execution_environment(_configuration(s, parallelism, extra))
    env.set_python_executable(sys.executable)
    env.set_parallelism(parallelism or s.flink_parallelism)
    return env
