"""What every benchmark of bench/run.py shares: the machine description, percentiles, the
report a benchmark returns, and the servers it starts (through the test harness, so a
benchmark starts Hearth exactly as the tests do).

Nothing here asserts a time: benchmarks measure and report.
"""
import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(ROOT, ".venv")
BUILD = os.path.join(ROOT, "build")
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
os.environ.setdefault("HEARTH_SERVER", os.path.join(BUILD, "bin", "hearth-server"))
os.environ.setdefault("HEARTH_AGENT_JAR", os.path.join(BUILD, "lib", "hearth-driver.jar"))

from hearth_harness import HearthServer, Redis, wait_until  # noqa: E402,F401


def percentile(samples, p):
    """The p-th percentile (0..100) of samples, by linear interpolation between ranks."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution_ms(samples_s):
    """p50/p90/p99 in milliseconds of samples in seconds."""
    return {f"p{p}": percentile(samples_s, p) * 1000.0 for p in (50, 90, 99)}


def ratio(value, baseline):
    if value is None or not baseline:
        return None
    return value / baseline


@dataclasses.dataclass
class Row:
    """One line of a benchmark's table: a measure, its value, the baseline of the same run and
    value / baseline (None when the measure has no baseline of its own)."""
    measure: str
    value: str
    baseline: str = ""
    ratio: float | None = None


@dataclasses.dataclass
class Report:
    """What one benchmark hands back to bench/run.py."""
    name: str
    title: str
    figures: dict = dataclasses.field(default_factory=dict)  # flat key -> number or None
    rows: list = dataclasses.field(default_factory=list)      # list[Row]
    notes: list = dataclasses.field(default_factory=list)     # list[str], Markdown
    details: dict = dataclasses.field(default_factory=dict)   # raw data for the JSON


def machine():
    """Cores, memory, CPU model and versions of what the benchmarks run on."""
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30

    def version(command):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else None

    pyspark = None
    try:
        import pyspark  # noqa: F401 (the venv's)
        pyspark = pyspark.__version__
    except ImportError:
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "cpu": cpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "pyspark": pyspark,
        "java": version(["java", "-version"]),
        "redis": version(["redis-server", "--version"]),
        "compiler": version(["c++", "--version"]),
        "hearth_commit": version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]),
    }


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.start


def log(*parts):
    print("[bench]", *parts, file=sys.stderr, flush=True)
