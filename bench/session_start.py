#!/usr/bin/env python3
"""Benchmark: how long a user waits for a session, against a bare Spark driver start.

Measures, in one run on this machine:
  baseline   spark-submit of a PySpark script until its SparkSession exists (what a fresh
             PySpark driver costs before any code runs: the floor for a Livy-like server);
  hearth     POST /sessions until GET /sessions/{id}/state says idle;
  first      the first pyspark statement `1+1` on an idle session (starts the Python worker);
  warm       a later statement on the same session.
Prints medians and the ratio hearth/baseline. Not a test: nothing here asserts a time.

    .venv/bin/python bench/session_start.py [--rounds 3]
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
os.environ.setdefault("HEARTH_SERVER", os.path.join(ROOT, "build", "bin", "hearth-server"))

from hearth_harness import HearthServer, Redis  # noqa: E402

BASELINE_SCRIPT = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.config("spark.ui.enabled", "false").getOrCreate()
print("READY", flush=True)
spark.stop()
"""


def poll(predicate, interval=0.01, timeout=300):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(interval)


def baseline_once(spark_submit, python):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(BASELINE_SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=python, SPARK_LOCAL_IP="127.0.0.1")
    start = time.monotonic()
    proc = subprocess.Popen([spark_submit, "--master", "local[*]", f.name], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    for line in proc.stdout:
        if line.startswith("READY"):
            elapsed = time.monotonic() - start
            break
    else:
        raise RuntimeError("baseline driver did not start")
    proc.wait()
    os.unlink(f.name)
    return elapsed


def hearth_once(server):
    start = time.monotonic()
    sid = server.post("/sessions", json={"kind": "pyspark", "conf": {"spark.ui.enabled": "false"}}).json()["id"]
    poll(lambda: server.get(f"/sessions/{sid}/state").json()["state"] == "idle")
    to_idle = time.monotonic() - start

    def run(code):
        t0 = time.monotonic()
        st = server.post(f"/sessions/{sid}/statements", json={"code": code}).json()
        poll(lambda: server.get(f"/sessions/{sid}/statements/{st['id']}").json()["state"] == "available")
        return time.monotonic() - t0

    first = run("1+1")
    warm = run("2+2")
    server.delete(f"/sessions/{sid}")
    return to_idle, first, warm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    venv = os.path.join(ROOT, ".venv")
    python = os.path.join(venv, "bin", "python")
    spark_submit = os.path.join(venv, "bin", "spark-submit")

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {platform.node()} {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.platform()}")

    redis = Redis()
    server = HearthServer(redis.url)
    try:
        baseline, idle, first, warm = [], [], [], []
        for _ in range(args.rounds):
            baseline.append(baseline_once(spark_submit, python))
            i, f, w = hearth_once(server)
            idle.append(i)
            first.append(f)
            warm.append(w)
    finally:
        server.stop()
        redis.stop()

    def fmt(values):
        return f"median {statistics.median(values):6.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})"

    print(f"baseline spark-submit → SparkSession ready : {fmt(baseline)}")
    print(f"hearth   POST /sessions → idle              : {fmt(idle)}")
    print(f"hearth   first statement (1+1)              : {fmt(first)}")
    print(f"hearth   warm statement (2+2)               : {fmt(warm)}")
    first_result = [i + f for i, f in zip(idle, first)]
    print(f"hearth   POST /sessions → first result      : {fmt(first_result)}")
    print(f"ratio    idle / baseline                    : {statistics.median(idle) / statistics.median(baseline):.2f}")
    print(f"ratio    first result / baseline            : {statistics.median(first_result) / statistics.median(baseline):.2f}")


if __name__ == "__main__":
    main()
