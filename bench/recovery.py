"""Recovery: SIGKILL of hearth-server, a restart on the same Redis, and the time until every
session is usable again (a statement submitted to each one has finished).

Two runs:
  real    10 pyspark sessions on real Spark drivers: 2 with a driver of their own, 8 sharing one
          driver (shareLevel user), so three driver JVMs are adopted;
  fake    1,000 sessions on ten hearth-fake-driver-for-benchmarks processes (a BENCHMARK TOOL
          that runs no Spark, see capacity.py): what the server's own recovery path costs.

For each: the new process is started the moment the old one is dead; `listen` is from its start
to its listening line (recovery happens before it opens its ports), `usable` from the listening
line to the last statement's answer. The baseline, measured in the same run just before the kill,
is the same round of statements (one per session, submitted together, long-polled) on the
running server: usable / baseline says what recovering adds to a round of statements.
"""
import concurrent.futures
import os
import shutil
import tempfile
import time

import requests

from benchlib import HearthServer, Redis, Report, Row, wait_until
from capacity import Sessions, make_fake_spark_home

FAST_CONF = {"spark.ui.enabled": "false"}
CODE = "1 + 1"


def statement_round(server, session_ids, workers):
    """Submits CODE to every session at once and long-polls each answer; returns the seconds the
    round took. Fails when a statement does not end with its result."""
    local = requests.Session()

    def one(sid):
        r = local.post(f"{server.url}/sessions/{sid}/statements", json={"code": CODE}, timeout=120)
        if r.status_code != 201:
            raise RuntimeError(f"POST statement to session {sid}: {r.status_code} {r.text}")
        st = r.json()
        deadline = time.monotonic() + 300
        while st["state"] not in ("available", "cancelled"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"session {sid}: statement {st['id']} still {st['state']}")
            st = local.get(f"{server.url}/sessions/{sid}/statements/{st['id']}", params={"wait": 30000},
                           timeout=120).json()
        if st["state"] != "available" or st["output"]["status"] != "ok":
            raise RuntimeError(f"session {sid}: {st}")

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, session_ids))
    return time.perf_counter() - start


def kill_and_restart(server, redis, extra):
    """SIGKILLs the server and starts a new one on its Redis and data directory; returns the new
    server and the seconds from its start to its listening line."""
    server.kill()
    start = time.perf_counter()
    restarted = HearthServer(redis.url, *extra, keep_drivers=True, data_dir=server.data_dir,
                             shared_dir=server.shared_dir)
    return restarted, time.perf_counter() - start


def measure(name, server, redis, session_ids, extra, workers):
    baseline_s = statement_round(server, session_ids, workers)
    server, listen_s = kill_and_restart(server, redis, extra)
    usable_s = statement_round(server, session_ids, workers)
    states = {s["id"]: s["state"] for s in server.get("/sessions", params={"size": 100000}).json()["sessions"]}
    not_back = [sid for sid in session_ids if states.get(sid) not in ("idle", "busy")]
    return server, {
        f"recovery_{name}_sessions": len(session_ids),
        f"recovery_{name}_listen_s": listen_s,
        f"recovery_{name}_usable_s": usable_s,
        f"recovery_{name}_baseline_round_s": baseline_s,
        f"recovery_{name}_not_back": len(not_back),
    }


def stop_everything(server, redis):
    """Stops the drivers (the servers here keep them at SIGTERM), the server and Redis."""
    server.keep_dirs = False
    try:
        for d in server.get("/drivers").json().get("drivers", []):
            server.delete(f"/drivers/{d['id']}")
    except requests.RequestException:
        pass  # a killed server: its drivers end by their idle timeout
    server.stop()
    redis.stop()


def run_real(quick):
    del quick  # one round either way: a Spark start per driver is the expensive part
    redis = Redis()
    server = HearthServer(redis.url, keep_drivers=True)
    try:
        bodies = ([{"kind": "pyspark", "conf": FAST_CONF}] * 2 +
                  [{"kind": "pyspark", "shareLevel": "user", "conf": FAST_CONF}] * 8)
        ids = []
        for body in bodies:
            r = server.post("/sessions", json=body)
            if r.status_code != 201:
                raise RuntimeError(f"POST /sessions: {r.status_code} {r.text}")
            ids.append(r.json()["id"])
        wait_until(lambda: all(server.get(f"/sessions/{i}/state").json()["state"] == "idle" for i in ids),
                   300, "10 real sessions to be idle", interval=0.2)
        statement_round(server, ids, 10)  # the Python workers start on the first statement
        server, figures = measure("real", server, redis, ids, (), 10)
        return figures
    finally:
        stop_everything(server, redis)


def run_fake(quick):
    base = tempfile.mkdtemp(prefix="hearth-bench-recovery-")
    spark_home = make_fake_spark_home(os.path.join(base, "fake-spark-home"))
    extra = ("--spark-home", spark_home, "--session-timeout", "0", "--driver-unused-timeout", "0")
    count = 200 if quick else 1000
    redis = Redis()
    server = HearthServer(redis.url, *extra, keep_drivers=True)
    try:
        sessions = Sessions(server)
        sessions.grow_to(count)
        server, figures = measure("fake", server, redis, sessions.ids, extra, 16)
        return figures
    finally:
        stop_everything(server, redis)
        shutil.rmtree(base, ignore_errors=True)


def run(quick):
    report = Report("recovery", "Recovery after SIGKILL + restart")
    figures = {}
    figures.update(run_real(quick))
    figures.update(run_fake(quick))
    # The headline figure (goal <= 2 s): the slower of the two runs, after the new process answers.
    figures["recovery_s"] = max(figures["recovery_real_usable_s"], figures["recovery_fake_usable_s"])
    report.figures = figures
    for name in ("real", "fake"):
        usable = figures[f"recovery_{name}_usable_s"]
        baseline = figures[f"recovery_{name}_baseline_round_s"]
        n = figures[f"recovery_{name}_sessions"]
        report.rows.append(Row(f"{name}: {n} sessions, new process start → listening",
                               f"{figures[f'recovery_{name}_listen_s']:.2f} s"))
        report.rows.append(Row(f"{name}: listening → a statement done in every session", f"{usable:.2f} s",
                               f"the same round before the kill {baseline:.3f} s", usable / baseline))
        report.rows.append(Row(f"{name}: sessions not back afterwards", str(figures[f"recovery_{name}_not_back"])))
    report.notes.append("Drivers say hello again when the new server answers their heartbeat with "
                        "not_authenticated, or after three silent heartbeats (2 s each by default).")
    return report
