"""The file source's Java parts: a split assigner that reads queued landing files oldest first (path
order), a line-block format that hands lines to Python in blocks, and a file enumerator whose discoveries
stat only new files (``IncrementalFileEnumerator``).

Flink's ``FileSource`` hands out the files of one folder listing in no defined order (the default
``LocalityAwareSplitAssigner`` picks by host-locality counts). When files queue up (the job fell
behind, or was down for a redeploy), a newer file can then be read before older ones and the older
files' rows are dead-lettered ``late``. ``streamguard.OrderedSplitAssigner`` (Java, in
``flink_jobs/java/src``) hands out the pending splits by path, then offset; landing writers name files
so that path order is publication order (``flink_jobs.replay``).

The jar is compiled on first use with the JDK's ``javac`` against the PyFlink wheel's jars and cached
under ``<work dir>/jars`` by source hash. Without ``javac`` the job falls back to Flink's default
assigner and logs a warning. ``streamguard.LineBatchFormat`` reads a file as records of up to N lines
(one Java-to-Python hand-over per block instead of per line); without ``javac`` the source emits single
lines, which the jobs take the same way. The jar is added to the job (``pipeline.jars``), so a standalone cluster's
JobManager (where the split enumerator runs) loads it from the job, not from its ``lib/``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

JAVA_SRC = Path(__file__).resolve().parent.parent / "java" / "src"
SOURCES = tuple(JAVA_SRC / "streamguard" / f"{name}.java"
                for name in ("OrderedSplitAssigner", "LineBatchFormat", "SeriesBlockSplitter",
                             "IncrementalFileEnumerator"))
PROVIDER_CLASS = "streamguard.OrderedSplitAssigner$Provider"


def _javac() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "javac").is_file():
        return str(Path(home) / "bin" / "javac")
    return shutil.which("javac")


def _wheel_classpath() -> str:
    import pyflink

    root = Path(pyflink.__file__).resolve().parent
    return os.pathsep.join(str(root / sub / "*") for sub in ("lib", "opt"))


def assigner_jar(cache_dir: str | Path | None = None) -> Path | None:
    """The compiled jar (built now if its sources changed); None when no ``javac`` is found."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES)).hexdigest()[:12]
    if cache_dir is None:
        from serving.settings import get_settings

        cache_dir = get_settings().work_dir / "jars"
    jar = Path(cache_dir) / f"streamguard-flink-{digest}.jar"
    if jar.is_file():
        return jar
    javac = _javac()
    if javac is None:
        log.warning("no javac (JDK) found: the file source reads queued files in Flink's default order")
        return None
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sg-javac-") as tmp:
        classes = Path(tmp) / "classes"
        res = subprocess.run([javac, "--release", "11", "-nowarn", "-d", str(classes), "-cp", _wheel_classpath(),
                              *map(str, SOURCES)], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"javac failed for {', '.join(p.name for p in SOURCES)}:\n{res.stderr[-3000:]}")
        # a jar is a zip; class loading needs no manifest, so no `jar` tool is required
        part = jar.with_name(f".{jar.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(classes.rglob("*.class")):
                z.write(f, f.relative_to(classes).as_posix())
        os.replace(part, jar)  # atomic: concurrent builders write the same bytes
    return jar


def _add_jar_once(env, url: str) -> None:
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    key = jvm.org.apache.flink.configuration.PipelineOptions.JARS.key()
    conf = jvm.org.apache.flink.python.util.PythonConfigUtil.getEnvironmentConfig(env._j_stream_execution_environment)
    if url not in (conf.getString(key, None) or ""):
        env.add_jars(url)  # pipeline.jars (shipped with the job) + the client's context class loader


def _java_class(env, name: str):
    """``name`` from the project jar (built if needed, shipped with the job), or None without a JDK."""
    from pyflink.util.java_utils import load_java_class

    jar = assigner_jar()
    if jar is None:
        return None
    _add_jar_once(env, jar.as_uri())
    return load_java_class(name)


def ordered_split_assigner(env):
    """A ``FileSplitAssignerProvider`` giving splits in path order, or None (no JDK: Flink's default)."""
    from pyflink.datastream.connectors.file_system import FileSplitAssignerProvider

    j_class = _java_class(env, PROVIDER_CLASS)
    return None if j_class is None else FileSplitAssignerProvider(j_class.newInstance())


def incremental_file_enumerator(env):
    """A ``FileEnumeratorProvider`` that stats only files not listed before, or None (no JDK: Flink's)."""
    from pyflink.datastream.connectors.file_system import FileEnumeratorProvider

    j_class = _java_class(env, "streamguard.IncrementalFileEnumerator$Provider")
    return None if j_class is None else FileEnumeratorProvider(j_class.newInstance())


def series_block_splitter(env, n_values: int = 0, nodata=(), series=()):
    """The Java ``FlatMapFunction`` twin of ``blocks.split_by_series``, or None (no JDK). ``n_values`` > 0:
    it also parses the common lines (``blocks.decode_block``)."""
    from pyflink.java_gateway import get_gateway

    j_class = _java_class(env, "streamguard.SeriesBlockSplitter")
    if j_class is None:
        return None
    gateway = get_gateway()
    jvm = gateway.jvm
    codes = gateway.new_array(jvm.double, len(nodata))
    for i, c in enumerate(nodata):
        codes[i] = float(c)
    ids = gateway.new_array(jvm.java.lang.String, len(series))
    for i, sid in enumerate(series):
        ids[i] = sid
    types = gateway.new_array(jvm.java.lang.Class, 3)
    types[0], types[1], types[2] = jvm.java.lang.Integer.TYPE, codes.getClass(), ids.getClass()
    args = gateway.new_array(jvm.java.lang.Object, 3)
    args[0], args[1], args[2] = int(n_values), codes, ids
    return j_class.getConstructor(types).newInstance(args)


def line_batch_format(env, max_lines: int):
    """A ``StreamFormat`` giving blocks of up to ``max_lines`` lines ('\\n'-joined), or None (no JDK)."""
    from pyflink.datastream.connectors.file_system import StreamFormat
    from pyflink.java_gateway import get_gateway

    j_class = _java_class(env, "streamguard.LineBatchFormat")
    if j_class is None:
        return None
    gateway = get_gateway()
    param_types = gateway.new_array(gateway.jvm.java.lang.Class, 1)
    param_types[0] = gateway.jvm.java.lang.Integer.TYPE
    args = gateway.new_array(gateway.jvm.java.lang.Object, 1)
    args[0] = int(max_lines)
    return StreamFormat(j_class.getConstructor(param_types).newInstance(args))
