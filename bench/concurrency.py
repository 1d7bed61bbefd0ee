"""Concurrency on one Spark context: four independent queries from four sessions on one shared
driver, against the same four queries run one after another (Livy's FIFO: one statement at a
time per session).

Each query is a single-task, CPU-bound Spark SQL aggregation sized to take a few seconds alone
(calibrated at the start of the run). Both ways run on the same driver (four shareLevel "user"
sessions of one user, the server's default master local[*]):
  sequential  the four queries submitted at once to one session: they run in order;
  concurrent  one query in each of the four sessions, submitted together.
Span = last `completed` − first `started` of the four statements (the server's own statement
timestamps). Speed-up = sequential span / concurrent span; the ideal is min(4, task slots),
one task per query, task slots = the driver's cores.
"""
import os
import time

import benchlib
from benchlib import Report, Row, wait_until

BODY = {"kind": "pyspark", "conf": {"spark.ui.enabled": "false"}, "shareLevel": "user"}


def query(rows):
    return (f"spark.range(0, {rows}, 1, 1).selectExpr('sum(crc32(cast(id * 7 as string))) as s')"
            f".collect()[0]['s']")


def open_session(server):
    sid = server.post("/sessions", json=BODY).json()["id"]
    wait_until(lambda: server.get(f"/sessions/{sid}/state").json()["state"] == "idle", 300,
               "the session to be idle")
    return sid


def submit(server, sid, code):
    return sid, server.post(f"/sessions/{sid}/statements", json={"code": code}).json()["id"]


def finished(server, statements):
    done = []
    for sid, stid in statements:
        statement = server.get(f"/sessions/{sid}/statements/{stid}").json()
        if statement["state"] != "available":
            return None
        if statement["output"]["status"] != "ok":
            raise RuntimeError(f"query failed: {statement['output']}")
        done.append(statement)
    return done


def span(server, statements):
    done = wait_until(lambda: finished(server, statements), 600, "the queries to finish", interval=0.05)
    return (max(s["completed"] for s in done) - min(s["started"] for s in done)) / 1000.0


def run(quick):
    target_s = 1.5 if quick else 3.0
    redis = benchlib.Redis()
    server = benchlib.HearthServer(redis.url)
    try:
        sessions = [open_session(server) for _ in range(4)]
        for sid in sessions:  # each session's Python worker is up, the JIT has seen the query
            span(server, [submit(server, sid, query(2_000_000))])
        rows = 2_000_000
        alone = span(server, [submit(server, sessions[0], query(rows))])
        while alone < target_s / 4:  # too short to scale from reliably
            rows *= 4
            alone = span(server, [submit(server, sessions[0], query(rows))])
        rows = int(rows * target_s / alone)
        alone = span(server, [submit(server, sessions[0], query(rows))])

        rounds = 1 if quick else 3
        sequential, concurrent = [], []
        for _ in range(rounds):
            start = time.monotonic()
            sequential.append(span(server, [submit(server, sessions[0], query(rows)) for _ in range(4)]))
            concurrent.append(span(server, [submit(server, sid, query(rows)) for sid in sessions]))
            benchlib.log(f"concurrency: sequential {sequential[-1]:.2f} s, concurrent {concurrent[-1]:.2f} s "
                         f"({time.monotonic() - start:.0f} s)")
        for sid in sessions:
            server.delete(f"/sessions/{sid}")
    finally:
        server.stop()
        redis.stop()

    seq, conc = min(sequential), min(concurrent)
    slots = os.cpu_count() or 1
    ideal = float(min(4, slots))
    speedup = seq / conc
    report = Report("concurrency", "Concurrency: four queries of four sessions on one driver")
    report.figures = {"concurrency_speedup": speedup, "concurrency_ideal_speedup": ideal,
                      "concurrency_of_ideal": speedup / ideal, "concurrency_sequential_s": seq,
                      "concurrency_concurrent_s": conc}
    report.rows = [
        Row("four sessions at once (span)", f"{conc:.2f} s", f"{seq:.2f} s (one after another)", conc / seq),
        Row("speed-up", f"{speedup:.2f}", f"{ideal:.0f} (ideal: min(4, {slots} task slots))", speedup / ideal),
    ]
    report.notes.append(f"query: one task over {rows:,} rows (≈{alone:.1f} s alone); best of {rounds} "
                        "round(s) each.")
    report.details = {"rows": rows, "alone_s": alone, "sequential_s": sequential, "concurrent_s": concurrent,
                      "task_slots": slots}
    return report
