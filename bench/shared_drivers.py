#!/usr/bin/env python3
"""Benchmark: what shared drivers and the warm pool save a user, against a cold start.

Measures, in one run on this machine (POST /sessions until GET /sessions/{id}/state says idle,
polled every 2 ms):
  cold     shareLevel "session" on a server without a pool: a new driver (spark-submit) per session;
  attach   shareLevel "user" while a driver of that user is running: the session opens on it;
  pool     shareLevel "session" on a server with --driver-pool-size 1: a pooled driver is taken
           (after each round the pool is allowed to refill);
  overlap  four sessions on one driver each run a one-task job sleeping 3 s, submitted together;
           overlap = sum of the jobs' durations / (last completion - first submission), from
           Spark's own job records (its status REST API): ~4 when parallel, <= 1 when serialised
           (as Livy, one driver per session with one statement at a time, would be per driver).
Prints medians and ratios to cold. Not a test: nothing here asserts a time.

    .venv/bin/python bench/shared_drivers.py [--rounds 5]
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
os.environ.setdefault("HEARTH_SERVER", os.path.join(ROOT, "build", "bin", "hearth-server"))

from hearth_harness import HearthServer, Redis, wait_until  # noqa: E402


def poll(predicate, interval=0.002, timeout=300):
    return wait_until(predicate, timeout, "the benchmark's condition", interval=interval)


def to_idle(server, body):
    """Seconds from POST /sessions to idle, and the session id."""
    start = time.monotonic()
    response = server.post("/sessions", json=body)
    response.raise_for_status()
    sid = response.json()["id"]

    def idle():
        state = server.get(f"/sessions/{sid}/state").json()["state"]
        if state in ("error", "dead"):
            raise RuntimeError(f"session {sid} ended {state}")
        return state == "idle"

    poll(idle)
    return time.monotonic() - start, sid


def run(server, sid, code):
    st = server.post(f"/sessions/{sid}/statements", json={"code": code}).json()
    return poll(lambda: (lambda s: s if s["state"] == "available" else None)(
        server.get(f"/sessions/{sid}/statements/{st['id']}").json()), interval=0.05)


def pooled_ready(server):
    return any(d["pooled"] and d["state"] == "idle" for d in server.get("/drivers").json()["drivers"])


def spark_time(text):
    return datetime.datetime.strptime(text.replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def overlap(server):
    sessions = [to_idle(server, {"kind": "pyspark", "shareLevel": "user"})[1] for _ in range(4)]
    for sid in sessions:
        run(server, sid, "1+1")  # each session's Python worker is up before the measured part
    code = "sc.parallelize([0], 1).map(lambda x: __import__('time').sleep(3) or x).collect()"
    statements = [(sid, server.post(f"/sessions/{sid}/statements", json={"code": code}).json()["id"])
                  for sid in sessions]
    for sid, stid in statements:
        poll(lambda: server.get(f"/sessions/{sid}/statements/{stid}").json()["state"] == "available",
             interval=0.05)
    driver = server.get(f"/sessions/{sessions[0]}/driver").json()
    groups = {f"hearth-{sid}-{stid}" for sid, stid in statements}
    url = f"{driver['sparkUiUrl']}/api/v1/applications/{driver['appId']}/jobs"

    def recorded():
        jobs = [j for j in requests.get(url, timeout=30).json() if j.get("jobGroup") in groups]
        return jobs if len(jobs) == 4 and all(j.get("completionTime") for j in jobs) else None

    jobs = poll(recorded, interval=0.1, timeout=60)
    submitted = [spark_time(j["submissionTime"]) for j in jobs]
    completed = [spark_time(j["completionTime"]) for j in jobs]
    span = max(completed) - min(submitted)
    for sid in sessions:
        server.delete(f"/sessions/{sid}")
    return sum(c - s for s, c in zip(submitted, completed)) / span, span


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {platform.node()} {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.platform()}")

    cold, attach, pooled = [], [], []
    redis = Redis()
    # local[4]: the overlap part needs four task slots.
    server = HearthServer(redis.url, "--master", "local[4]")
    try:
        for _ in range(args.rounds):
            seconds, sid = to_idle(server, {"kind": "pyspark"})
            cold.append(seconds)
            server.delete(f"/sessions/{sid}")
        first_s, first = to_idle(server, {"kind": "pyspark", "shareLevel": "user"})
        for _ in range(args.rounds):
            seconds, sid = to_idle(server, {"kind": "pyspark", "shareLevel": "user"})
            attach.append(seconds)
            server.delete(f"/sessions/{sid}")
        server.delete(f"/sessions/{first}")
        ratio, span = overlap(server)
    finally:
        server.stop()
        redis.stop()

    redis = Redis()
    server = HearthServer(redis.url, "--driver-pool-size", "1")
    try:
        for _ in range(args.rounds):
            poll(lambda: pooled_ready(server), interval=0.05)
            seconds, sid = to_idle(server, {"kind": "pyspark"})
            pooled.append(seconds)
            server.delete(f"/sessions/{sid}")
    finally:
        server.stop()
        redis.stop()

    def fmt(values):
        return f"median {statistics.median(values) * 1000:8.1f} ms  (runs: {', '.join(f'{v * 1000:.1f}' for v in values)})"

    print(f"cold    POST → idle, own new driver       : {fmt(cold)}")
    print(f"attach  POST → idle, running user driver  : {fmt(attach)}")
    print(f"pool    POST → idle, pooled driver        : {fmt(pooled)}")
    print(f"ratio   attach / cold                     : {statistics.median(attach) / statistics.median(cold):.4f}")
    print(f"ratio   pool / cold                       : {statistics.median(pooled) / statistics.median(cold):.4f}")
    print(f"overlap four 3 s jobs of four sessions on one driver: ratio {ratio:.2f} over {span:.2f} s "
          "(~4 parallel, <= 1 serialised)")


if __name__ == "__main__":
    main()
