"""Statement overhead: a trivial statement (`1 + 1`) round trip through Hearth against the same
statement executed directly inside a local PySpark process (the floor).

Paths, each on one warm pyspark session of a real local Spark driver, rounds interleaved so
every path sees the same machine state:
  zmq        `call` POST /sessions/{id}/statements on the client channel, then the pushed
             `statement` event whose state is `available` (the client is subscribed);
  longpoll   REST POST, then GET …/statements/{sid}?wait=60000 (answered the moment it is done),
             one keep-alive HTTP connection;
  poll100    REST POST, then GET …/statements/{sid} every 100 ms until available, as Livy's
             clients poll;
  floor      inside a plain Python process holding a local SparkSession (the driver's own
             Python): compile + exec of the code and repr of its value, as an interpreter does.
Overhead = path - floor, per percentile. All clients are Python (requests, pyzmq), so ratios
compare the server's paths, not languages.
"""
import json
import os
import subprocess
import sys
import time

import requests

import benchlib
from benchlib import Report, Row, distribution_ms, wait_until
from client_channel import ClientChannel, statement_done

CODE = "1 + 1"
LIVY_POLL_S = 0.1

FLOOR_SCRIPT = r"""
import json, sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
code, rounds = sys.argv[1], int(sys.argv[2])
namespace = {"spark": spark}
samples = []
for i in range(rounds + 50):
    start = time.perf_counter()
    compiled = compile(code, "<statement>", "eval")
    text = repr(eval(compiled, namespace))
    elapsed = time.perf_counter() - start
    if i >= 50:
        samples.append(elapsed)
assert text == "2", text
spark.stop()
print("SAMPLES " + json.dumps(samples), flush=True)
"""


def floor_samples(rounds):
    python = os.path.join(benchlib.VENV, "bin", "python")
    out = subprocess.run([python, "-c", FLOOR_SCRIPT, CODE, str(rounds)], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"))
    for line in out.stdout.splitlines():
        if line.startswith("SAMPLES "):
            return json.loads(line[len("SAMPLES "):])
    raise RuntimeError("the floor process failed:\n" + out.stderr[-3000:])


def check(statement):
    assert statement["state"] == "available" and statement["output"]["data"]["text/plain"] == "2", statement


def longpoll_round(http, base, sid):
    start = time.perf_counter()
    statement = http.post(f"{base}/sessions/{sid}/statements", json={"code": CODE}).json()
    done = http.get(f"{base}/sessions/{sid}/statements/{statement['id']}", params={"wait": 60000}).json()
    elapsed = time.perf_counter() - start
    check(done)
    return elapsed


def poll100_round(http, base, sid):
    start = time.perf_counter()
    statement = http.post(f"{base}/sessions/{sid}/statements", json={"code": CODE}).json()
    url = f"{base}/sessions/{sid}/statements/{statement['id']}"
    while True:
        time.sleep(LIVY_POLL_S)  # the client's poll interval is what this path measures
        done = http.get(url).json()
        if done["state"] in ("available", "cancelled"):
            break
    elapsed = time.perf_counter() - start
    check(done)
    return elapsed


def zmq_round(channel, sid):
    start = time.perf_counter()
    status, statement = channel.call("POST", f"/sessions/{sid}/statements", {"code": CODE})
    assert status == 201, statement
    events = channel.events_until(statement_done(sid, statement["id"]), timeout_s=60, session=sid)
    elapsed = time.perf_counter() - start
    check(events[-1].body["body"])
    return elapsed


def run(quick):
    rounds = 100 if quick else 1000
    poll_rounds = 30 if quick else 1000
    benchlib.log(f"statement: floor ({rounds} runs in a local PySpark process)")
    floor = floor_samples(rounds)

    redis = benchlib.Redis()
    server = benchlib.HearthServer(redis.url)
    samples = {"zmq": [], "longpoll": [], "poll100": []}
    try:
        http = requests.Session()
        sid = http.post(f"{server.url}/sessions",
                        json={"kind": "pyspark", "conf": {"spark.ui.enabled": "false"}}).json()["id"]
        wait_until(lambda: http.get(f"{server.url}/sessions/{sid}/state").json()["state"] == "idle",
                   300, "the session to be idle")
        longpoll_round(http, server.url, sid)  # starts the Python worker (seconds: the channel
        # client would be forgotten as silent if it waited without reading)
        channel = ClientChannel(server.client_address, name="bench/statement")
        channel.subscribe(session=sid)
        for _ in range(20):  # warm the Python worker, the connections and the JIT
            longpoll_round(http, server.url, sid)
            zmq_round(channel, sid)
        benchlib.log(f"statement: {rounds} rounds each of zmq and longpoll, {poll_rounds} of poll100")
        for i in range(rounds):
            samples["zmq"].append(zmq_round(channel, sid))
            samples["longpoll"].append(longpoll_round(http, server.url, sid))
            if i < poll_rounds:
                samples["poll100"].append(poll100_round(http, server.url, sid))
        channel.close()
        http.delete(f"{server.url}/sessions/{sid}")
    finally:
        server.stop()
        redis.stop()

    floor_ms = distribution_ms(floor)
    report = Report("statement", "Statement overhead: `1 + 1` round trip")
    figures = report.figures
    names = {"zmq": "ZeroMQ call + pushed result", "longpoll": "REST POST + GET ?wait= (long-poll)",
             "poll100": "REST POST + GET every 100 ms (Livy clients)"}
    keys = {"zmq": "zmq", "longpoll": "rest_longpoll", "poll100": "rest_poll100"}
    for p in ("p50", "p90", "p99"):
        figures[f"statement_floor_{p}_ms"] = floor_ms[p]
    for path in ("zmq", "longpoll", "poll100"):
        dist = distribution_ms(samples[path])
        for p in ("p50", "p90", "p99"):
            figures[f"statement_{keys[path]}_{p}_ms"] = dist[p]
            figures[f"statement_{keys[path]}_overhead_{p}_ms"] = dist[p] - floor_ms[p]
        report.rows.append(Row(f"{names[path]}, p50 / p90 / p99",
                               " / ".join(f"{dist[p]:.2f}" for p in ("p50", "p90", "p99")) + " ms",
                               " / ".join(f"{floor_ms[p]:.4f}" for p in ("p50", "p90", "p99")) + " ms (floor)",
                               dist["p50"] / floor_ms["p50"]))
    zmq, longpoll = figures["statement_zmq_p50_ms"], figures["statement_rest_longpoll_p50_ms"]
    report.rows.append(Row("ZeroMQ vs REST long-poll, p50", f"{zmq:.2f} ms", f"{longpoll:.2f} ms (long-poll)",
                           zmq / longpoll))
    report.rows.append(Row("REST long-poll vs 100 ms polling, p50", f"{longpoll:.2f} ms",
                           f"{figures['statement_rest_poll100_p50_ms']:.2f} ms (100 ms polling)",
                           longpoll / figures["statement_rest_poll100_p50_ms"]))
    report.notes.append(f"{rounds} rounds of zmq and long-poll, {poll_rounds} of 100 ms polling, interleaved, "
                        f"after 20 warm-up rounds; floor: {rounds} runs after 50 warm-up runs. "
                        "Ratios in the first rows are path p50 / floor p50.")
    report.details = {"samples_s": samples, "floor_s": floor}
    return report
