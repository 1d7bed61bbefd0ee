"""Session start: POST /sessions until GET /sessions/{id}/state says idle (polled every 2 ms).

  cold    shareLevel "session" on a server without a pool: spark-submit of a new driver;
  bare    baseline: a plain Python process of the same .venv that builds a SparkSession
          (getOrCreate, which runs the same spark-submit) until it returns;
  pool    shareLevel "session" on a server with --driver-pool-size 1: a pooled driver is
          taken; before each round the pool is allowed to refill;
  attach  shareLevel "user" while a driver of that user is running: the session opens on it.
cold is reported against bare; pool and attach against cold. All with spark.ui.enabled=false
and the server's default master (local[*]).
"""
import os
import statistics
import subprocess
import time

import benchlib
from benchlib import Report, Row, wait_until

BARE_SCRIPT = r"""
import time
start = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
print(f"READY {time.perf_counter() - start:.6f}", flush=True)
spark.stop()
"""
BODY = {"kind": "pyspark", "conf": {"spark.ui.enabled": "false"}}


def poll(predicate, interval=0.002, timeout=300):
    return wait_until(predicate, timeout, "the benchmark's condition", interval=interval)


def to_idle(server, body):
    """Seconds from POST /sessions to idle, and the session id."""
    start = time.perf_counter()
    response = server.post("/sessions", json=body)
    response.raise_for_status()
    sid = response.json()["id"]

    def idle():
        state = server.get(f"/sessions/{sid}/state").json()["state"]
        if state in ("error", "dead"):
            raise RuntimeError(f"session {sid} ended {state}")
        return state == "idle"

    poll(idle)
    return time.perf_counter() - start, sid


def bare_once():
    """Seconds from starting the Python process to its SparkSession."""
    python = os.path.join(benchlib.VENV, "bin", "python")
    start = time.perf_counter()
    proc = subprocess.Popen([python, "-c", BARE_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"))
    elapsed = None
    for line in proc.stdout:
        if line.startswith("READY"):
            elapsed = time.perf_counter() - start
    proc.wait()
    if elapsed is None:
        raise RuntimeError("the bare SparkSession did not start")
    return elapsed


def pooled_ready(server):
    return any(d["pooled"] and d["state"] == "idle" for d in server.get("/drivers").json()["drivers"])


def run(quick):
    rounds = 2 if quick else 5
    fast_rounds = 5 if quick else 20
    cold, bare, pool, attach = [], [], [], []

    redis = benchlib.Redis()
    server = benchlib.HearthServer(redis.url)
    try:
        bare_once()  # warm the page cache for both
        for _ in range(rounds):  # interleaved: both see the same machine state
            bare.append(bare_once())
            seconds, sid = to_idle(server, BODY)
            cold.append(seconds)
            server.delete(f"/sessions/{sid}")
        shared = dict(BODY, shareLevel="user")
        _, first = to_idle(server, shared)
        for _ in range(fast_rounds):
            seconds, sid = to_idle(server, shared)
            attach.append(seconds)
            server.delete(f"/sessions/{sid}")
        server.delete(f"/sessions/{first}")
    finally:
        server.stop()
        redis.stop()

    redis = benchlib.Redis()
    server = benchlib.HearthServer(redis.url, "--driver-pool-size", "1")
    try:
        for _ in range(fast_rounds):
            poll(lambda: pooled_ready(server), interval=0.05)
            # No launch-time conf: a pooled driver has the server's default launch settings, and
            # a request with other ones (spark.ui.enabled) would start a driver of its own.
            seconds, sid = to_idle(server, {"kind": "pyspark"})
            pool.append(seconds)
            server.delete(f"/sessions/{sid}")
    finally:
        server.stop()
        redis.stop()

    med = statistics.median
    report = Report("start", "Session start: POST /sessions → idle (medians)")
    report.figures = {
        "start_cold_s": med(cold),
        "start_bare_spark_s": med(bare),
        "start_cold_ratio": med(cold) / med(bare),
        "start_pool_ms": med(pool) * 1000,
        "start_attach_ms": med(attach) * 1000,
    }
    report.rows = [
        Row("cold: a new driver (spark-submit)", f"{med(cold):.2f} s", f"{med(bare):.2f} s (bare SparkSession)",
            med(cold) / med(bare)),
        Row("from the warm pool", f"{med(pool) * 1000:.1f} ms", f"{med(cold):.2f} s (cold)", med(pool) / med(cold)),
        Row("attached to a running driver", f"{med(attach) * 1000:.1f} ms", f"{med(cold):.2f} s (cold)",
            med(attach) / med(cold)),
    ]
    report.notes.append(f"{rounds} cold and bare rounds (interleaved), {fast_rounds} pool and attach rounds; "
                        "state polled every 2 ms, so pool and attach carry up to 2 ms of polling.")
    report.details = {"cold_s": cold, "bare_s": bare, "pool_s": pool, "attach_s": attach}
    return report
