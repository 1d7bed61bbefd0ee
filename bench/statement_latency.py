#!/usr/bin/env python3
"""Benchmark: round trip of a trivial statement over the ZeroMQ client channel vs REST long-poll.

One hearth-server (embedded defaults, a real local Spark driver), one warm pyspark session. Each
round submits `1 + 1` and waits for its result, alternating the two ways so both see the same
machine state:
  rest    POST /sessions/{id}/statements, then GET …/statements/{sid}?wait=60000 (Hearth's
          long-poll: answered the moment the statement is done), on one keep-alive HTTP
          connection (requests.Session) — the baseline;
  zmq     `call` POST …/statements on the client channel of a client subscribed to the session,
          then the pushed `statement` event whose state is `available`.
Both clients are Python (requests; pyzmq via tests/python/client_channel.py), so the ratio
compares the server's two paths, not two languages. Prints medians, p90 and the ratio. Not a
test: nothing here asserts a time.

    .venv/bin/python bench/statement_latency.py [--rounds 200]
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

from client_channel import ClientChannel, statement_done  # noqa: E402
from hearth_harness import HearthServer, Redis, wait_until  # noqa: E402

CODE = "1 + 1"


def rest_round(http, base, session_id):
    start = time.perf_counter()
    statement = http.post(f"{base}/sessions/{session_id}/statements", json={"code": CODE}).json()
    done = http.get(f"{base}/sessions/{session_id}/statements/{statement['id']}",
                    params={"wait": 60000}).json()
    elapsed = time.perf_counter() - start
    assert done["state"] == "available" and done["output"]["data"]["text/plain"] == "2", done
    return elapsed


def zmq_round(channel, session_id):
    start = time.perf_counter()
    status, statement = channel.call("POST", f"/sessions/{session_id}/statements", {"code": CODE})
    assert status == 201, statement
    events = channel.events_until(statement_done(session_id, statement["id"]), timeout_s=60,
                                  session=session_id)
    elapsed = time.perf_counter() - start
    final = events[-1].body["body"]
    assert final["state"] == "available" and final["output"]["data"]["text/plain"] == "2", final
    return elapsed


def summary(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    redis = Redis()
    server = HearthServer(redis.url)
    try:
        http = requests.Session()
        session = http.post(f"{server.url}/sessions",
                            json={"kind": "pyspark", "conf": {"spark.ui.enabled": "false"}}).json()
        session_id = session["id"]
        wait_until(lambda: http.get(f"{server.url}/sessions/{session_id}/state").json()["state"] == "idle",
                   300, "the session to be idle", interval=0.05)
        channel = ClientChannel(server.client_address, name="bench/statement_latency")
        channel.subscribe(session=session_id)
        for _ in range(10):  # warm both paths (the Python worker, connections, JIT)
            rest_round(http, server.url, session_id)
            zmq_round(channel, session_id)
        rest, zmq = [], []
        for _ in range(args.rounds):
            rest.append(rest_round(http, server.url, session_id))
            zmq.append(zmq_round(channel, session_id))
        channel.close()
        http.delete(f"{server.url}/sessions/{session_id}")
    finally:
        server.stop()
        redis.stop()

    rest_median, rest_p90 = summary(rest)
    zmq_median, zmq_p90 = summary(zmq)
    print(f"# statement_latency {datetime.date.today()} on {platform.node()} "
          f"({os.cpu_count()} CPUs, {platform.processor() or platform.machine()}), "
          f"{args.rounds} rounds of `{CODE}` on one warm pyspark session")
    print("| path | median | p90 | ratio to REST long-poll (median) |")
    print("| --- | --- | --- | --- |")
    print(f"| REST POST + GET ?wait= (long-poll) | {rest_median * 1000:.2f} ms | {rest_p90 * 1000:.2f} ms | 1 |")
    print(f"| ZeroMQ call + pushed event | {zmq_median * 1000:.2f} ms | {zmq_p90 * 1000:.2f} ms | "
          f"{zmq_median / rest_median:.2f} |")


if __name__ == "__main__":
    main()
