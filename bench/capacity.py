"""Server capacity: how much hearth-server itself carries, with fake drivers that run no Spark.

What runs (all on this machine, sharing its cores):
  redis-server        started by benchlib.Redis (unix socket, no persistence), as the tests do;
  hearth-server       benchlib.HearthServer with --spark-home pointing at a temporary fake Spark
                      home whose bin/spark-submit execs build/bin/hearth-fake-driver-for-benchmarks
                      (a BENCHMARK TOOL: it speaks the driver channel, answers every statement at
                      once with its code echoed as text/plain, and runs no Spark);
  the load            build/bin/hearth-load-generator-for-benchmarks, a C++ closed-loop generator:
                      N workers, each one keep-alive HTTP connection (REST) or a share of
                      hearth::clients::Client objects (client channel), one operation after the
                      other; it reports the throughput and latency of the operations that started
                      and ended inside its measured window, and its own CPU over that window.

Sessions are placed with shareLevel "user" and proxyUser u0..u9 (Hearth has no authentication,
so proxyUser is the effective user): ten fake driver processes, one per user, with up to 100
sessions each. The first session of each user launches its driver and is waited for, so the other
sessions attach to running drivers and --max-starting-sessions (100) is never reached.

Steps:
  1. idle server, 0 sessions: RSS and CPU (the baseline of every RSS figure);
  2. 1, 100 and 1,000 sessions, idle: RSS and CPU of hearth-server at each;
  3. with 1,000 sessions: concurrency ladders (1, 2, 4, … workers, each on its own session) of
     GET /version (REST and client channel: the do-nothing baseline of each transport),
     GET /sessions/{id} (REST), and statements (REST: POST + long-poll GET ?wait=; client channel:
     call + pushed result). A ladder stops at the first step whose p99 is >= 10 ms; the figure is
     the highest throughput among the steps with p99 < 10 ms. Server, Redis, fake-driver and
     generator CPU are sampled over each step's window;
  4. soak (10 min, 45 s with --quick): REST statements, client-channel statements (subscribed),
     REST GETs over all sessions, and a create → statement → delete loop of extra sessions, all at
     once; hearth-server's RSS sampled every second.
"""
import concurrent.futures
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time

import psutil
import requests

import benchlib
from benchlib import HearthServer, Redis, Report, Row, wait_until

FAKE_DRIVER = os.path.join(benchlib.BUILD, "bin", "hearth-fake-driver-for-benchmarks")
LOAD_GENERATOR = os.path.join(benchlib.BUILD, "bin", "hearth-load-generator-for-benchmarks")
USERS = [f"u{i}" for i in range(10)]
SESSION_COUNTS = (1, 100, 1000)
P99_LIMIT_MS = 10.0
CODE = "1 + 1"
MB = 1024.0 * 1024.0


class Settings:
    def __init__(self, quick):
        self.quick = quick
        self.idle_s = 3.0 if quick else 10.0          # idle window for RSS/CPU at a session count
        self.warmup_s = 0.3 if quick else 1.0         # per ladder step
        self.window_s = 1.2 if quick else 5.0         # measured per ladder step
        self.ladder = (1, 2, 4, 8, 16, 32) if quick else (1, 2, 4, 8, 16, 32, 64)
        self.soak_s = 45.0 if quick else 600.0


def make_fake_spark_home(base_dir):
    """<base_dir>/bin/spark-submit: a shim that execs the benchmark fake driver with
    spark-submit's arguments (it reads only the agent's)."""
    os.makedirs(os.path.join(base_dir, "bin"), exist_ok=True)
    shim = os.path.join(base_dir, "bin", "spark-submit")
    with open(shim, "w") as out:
        out.write("#!/bin/sh\n"
                  "# Benchmark shim: the 'Spark driver' is hearth-fake-driver-for-benchmarks (no Spark).\n"
                  f"exec '{FAKE_DRIVER}' \"$@\"\n")
    os.chmod(shim, os.stat(shim).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return base_dir


class Watched:
    """CPU seconds and RSS of the processes of one run: hearth-server, redis-server and the fake
    drivers (children of the server, found again at each look: sessions come and go)."""

    def __init__(self, server, redis):
        self.server = psutil.Process(server.proc.pid)
        self.redis = psutil.Process(redis.proc.pid)
        self.redis_socket = redis.socket

    def redis_commands(self):
        """Redis's command counters (INFO commandstats): {command: calls}."""
        out = subprocess.run(["redis-cli", "-s", self.redis_socket, "INFO", "commandstats"],
                             capture_output=True, text=True, timeout=30).stdout
        calls = {}
        for line in out.splitlines():
            if line.startswith("cmdstat_") and ":calls=" in line:
                name, rest = line[len("cmdstat_"):].split(":", 1)
                calls[name] = int(rest.split(",", 1)[0][len("calls="):])
        return calls

    def drivers(self):
        found = []
        for child in self.server.children(recursive=True):
            try:
                if child.name().startswith("hearth-fake-dri"):
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
        return found

    @staticmethod
    def _cpu(process):
        try:
            t = process.cpu_times()
            return t.user + t.system
        except psutil.NoSuchProcess:
            return 0.0

    @staticmethod
    def _rss(process):
        try:
            return process.memory_info().rss / MB
        except psutil.NoSuchProcess:
            return 0.0

    def cpu(self):
        drivers = {p.pid: self._cpu(p) for p in self.drivers()}
        return {"server": self._cpu(self.server), "redis": self._cpu(self.redis), "drivers": drivers}

    @staticmethod
    def cpu_pct(before, after, seconds):
        """Percent of one core of each process group between two cpu() snapshots."""
        drivers = sum(after["drivers"][pid] - before["drivers"].get(pid, 0.0) for pid in after["drivers"])
        return {"server": (after["server"] - before["server"]) / seconds * 100.0,
                "redis": (after["redis"] - before["redis"]) / seconds * 100.0,
                "drivers": drivers / seconds * 100.0}

    def rss(self):
        drivers = [self._rss(p) for p in self.drivers()]
        return {"server": self._rss(self.server), "redis": self._rss(self.redis),
                "drivers_total": sum(drivers), "drivers_each_max": max(drivers, default=0.0),
                "driver_processes": len(drivers)}


def idle_figures(watched, seconds):
    """RSS at the end and CPU over `seconds` of an idle server."""
    before = watched.cpu()
    time.sleep(seconds)  # the measured idle window itself
    after = watched.cpu()
    return {"cpu_pct": Watched.cpu_pct(before, after, seconds), "rss_mb": watched.rss()}


class Sessions:
    """Creates sessions on the fake drivers: shareLevel user, users round-robin."""

    def __init__(self, server):
        self.server = server
        self.ids = []
        self.created = 0
        self.local = threading.local()

    def _http(self):
        if not hasattr(self.local, "http"):
            self.local.http = requests.Session()
        return self.local.http

    def _create(self, user):
        response = self._http().post(self.server.url + "/sessions", timeout=60,
                                     json={"kind": "pyspark", "shareLevel": "user", "proxyUser": user})
        if response.status_code != 201:
            raise RuntimeError(f"POST /sessions: {response.status_code} {response.text}")
        return response.json()["id"]

    def _states(self):
        listed = self._http().get(self.server.url + "/sessions", params={"size": 100000}, timeout=60).json()
        return {s["id"]: s["state"] for s in listed["sessions"]}

    def wait_idle(self, ids, timeout=120):
        wanted = set(ids)

        def all_idle():
            states = self._states()
            bad = [i for i in wanted if states.get(i) in ("error", "dead", "killed")]
            if bad:
                raise RuntimeError(f"sessions ended instead of idle: {bad[:5]}\n{self.server.output()}")
            return all(states.get(i) == "idle" for i in wanted)
        wait_until(all_idle, timeout, f"{len(wanted)} sessions to become idle", interval=0.1)

    def grow_to(self, count):
        """Creates sessions until there are `count`; the first one of each user alone (it launches
        the user's driver), the rest four at a time. Returns the seconds it took."""
        start = time.perf_counter()
        first_of_user = [self._create(USERS[n % len(USERS)]) for n in range(self.created, min(count, len(USERS)))]
        self.created += len(first_of_user)
        self.wait_idle(first_of_user)
        self.ids += first_of_user
        users = [USERS[n % len(USERS)] for n in range(self.created, count)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            new = list(pool.map(self._create, users))
        self.created += len(new)
        self.wait_idle(new)
        self.ids += new
        return time.perf_counter() - start


def generate(op, channel, address, concurrency, warmup_s, window_s, watched, sessions=None, clients=1):
    """Runs the load generator once; returns its JSON result with the CPU of hearth-server, Redis
    and the fake drivers over (about) the same window."""
    args = [LOAD_GENERATOR, "--op", op, "--rest" if channel == "rest" else "--client-channel", address,
            "--concurrency", str(concurrency), "--warmup", f"{int(warmup_s * 1000)}ms",
            "--duration", f"{int(window_s * 1000)}ms", "--code", CODE, "--clients", str(clients)]
    if sessions:
        args += ["--sessions", ",".join(str(s) for s in sessions)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # "started": its clock starts now (after connecting/subscribing)
    if not first.startswith("started"):
        out, err = proc.communicate(timeout=60)
        raise RuntimeError(f"load generator failed to start: {first}{err}{out}")
    time.sleep(warmup_s)  # aligns our CPU window with the generator's measured window
    before, commands_before = watched.cpu(), watched.redis_commands()
    time.sleep(window_s)
    after, commands_after = watched.cpu(), watched.redis_commands()
    out, err = proc.communicate(timeout=window_s + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator exited {proc.returncode}: {err}")
    result = json.loads(out)
    result["cpu_pct_of"] = Watched.cpu_pct(before, after, window_s)
    result["cpu_pct_of"]["generator"] = result["cpu_pct"]
    # What one operation costs in Redis round trips (the server's store is synchronous).
    ops = max(result["ops"], 1)
    per_op = {name: (calls - commands_before.get(name, 0)) / ops for name, calls in commands_after.items()
              if name != "info" and calls > commands_before.get(name, 0)}
    result["redis_commands_per_op"] = {name: round(v, 2) for name, v in sorted(per_op.items(), key=lambda kv: -kv[1])}
    result["redis_commands_per_op_total"] = round(sum(per_op.values()), 1)
    return result


def ladder(name, op, channel, address, settings, watched, sessions=None):
    """Raises concurrency step by step; stops at the first step whose p99 >= the limit. Returns
    (best step with p99 < limit or None, all steps)."""
    steps = []
    for concurrency in settings.ladder:
        clients = max(1, concurrency // 8) if channel != "rest" else 1
        used = sessions[:concurrency] if sessions else None
        step = generate(op, channel, address, concurrency, settings.warmup_s, settings.window_s, watched,
                        used, clients)
        steps.append(step)
        benchlib.log(f"capacity: {name} c={concurrency}: {step['per_s']:.0f}/s p50 {step['p50_ms']:.2f} ms "
                     f"p99 {step['p99_ms']:.2f} ms errors {step['errors']} cpu server "
                     f"{step['cpu_pct_of']['server']:.0f}% redis {step['cpu_pct_of']['redis']:.0f}% "
                     f"generator {step['cpu_pct']:.0f}%")
        if step["errors"]:
            benchlib.log(f"capacity: {name}: first error: {step['first_error']}")
        if step["p99_ms"] >= P99_LIMIT_MS or step["ops"] == 0:
            break
    within = [s for s in steps if s["p99_ms"] < P99_LIMIT_MS and s["ops"] > 0 and not s["errors"]]
    best = max(within, key=lambda s: s["per_s"]) if within else None
    return best, steps


class Churn(threading.Thread):
    """The soak's session churn: create a session, wait until idle, one statement, delete."""

    def __init__(self, server, stop):
        super().__init__(daemon=True)
        self.server = server
        self.stop_event = stop
        self.cycles = 0
        self.errors = []

    def run(self):
        http = requests.Session()
        base = self.server.url
        n = 0
        while not self.stop_event.is_set():
            try:
                created = http.post(base + "/sessions", timeout=60, json={
                    "kind": "pyspark", "shareLevel": "user", "proxyUser": USERS[n % len(USERS)]})
                n += 1
                if created.status_code != 201:
                    raise RuntimeError(f"POST /sessions {created.status_code} {created.text}")
                sid = created.json()["id"]
                wait_until(lambda: http.get(f"{base}/sessions/{sid}/state", timeout=60).json()["state"] == "idle",
                           60, f"churn session {sid} idle", interval=0.02)
                st = http.post(f"{base}/sessions/{sid}/statements", json={"code": CODE}, timeout=60).json()
                done = http.get(f"{base}/sessions/{sid}/statements/{st['id']}", params={"wait": 10000},
                                timeout=60).json()
                if done["state"] != "available":
                    raise RuntimeError(f"churn statement {done}")
                deleted = http.delete(f"{base}/sessions/{sid}", timeout=120)
                if deleted.status_code != 200:
                    raise RuntimeError(f"DELETE /sessions/{sid}: {deleted.status_code} {deleted.text}")
                self.cycles += 1
            except Exception as e:  # reported, and the soak goes on
                self.errors.append(repr(e))
                if len(self.errors) > 20:
                    return


def soak(server, watched, sessions, settings):
    """Mixed load for settings.soak_s; hearth-server's RSS every second."""
    rest = server.url.replace("http://", "")
    seconds = settings.soak_s
    common = ["--warmup", "0ms", "--duration", f"{int(seconds * 1000)}ms", "--code", CODE]
    loads = {
        "rest_statements": [LOAD_GENERATOR, "--op", "statement", "--rest", rest, "--concurrency", "2",
                            "--sessions", ",".join(map(str, sessions[:2]))] + common,
        "zmq_statements": [LOAD_GENERATOR, "--op", "statement", "--client-channel", server.client_address,
                           "--concurrency", "2", "--sessions", ",".join(map(str, sessions[2:4]))] + common,
        "rest_gets": [LOAD_GENERATOR, "--op", "get-session", "--rest", rest, "--concurrency", "2",
                      "--sessions", ",".join(map(str, sessions))] + common,
    }
    start_rss = watched.rss()
    procs = {name: subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in loads.items()}
    stop = threading.Event()
    churn = Churn(server, stop)
    churn.start()
    samples = []
    t0 = time.monotonic()
    cpu_before = watched.cpu()
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)  # the sampling period of the soak
        samples.append((round(time.monotonic() - t0, 1), round(watched.rss()["server"], 2)))
    cpu_after = watched.cpu()
    stop.set()
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[name] = json.loads(out) if proc.returncode == 0 and out.strip() else {"failed": err[-2000:]}
    churn.join(timeout=180)
    end_rss = watched.rss()
    rss = [mb for _, mb in samples]
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = None
    if len(half) >= 2:
        slope = (half[-1][1] - half[0][1]) / ((half[-1][0] - half[0][0]) / 60.0)
    return {
        "seconds": seconds, "start": start_rss, "end": end_rss, "max_server_mb": max(rss, default=None),
        "end_server_mb": rss[-1] if rss else None, "second_half_mb_per_min": slope,
        "cpu_pct": Watched.cpu_pct(cpu_before, cpu_after, time.monotonic() - t0),
        "loads": results, "churn_cycles": churn.cycles, "churn_errors": churn.errors[:5],
        "samples": samples,
    }


def fmt(value, unit="", digits=3):
    if value is None:
        return "n/a"
    return f"{value:.{digits}g}{unit}" if abs(value) < 10 ** digits else f"{value:.0f}{unit}"


def step_summary(step):
    if not step:
        return None
    return {k: step[k] for k in ("concurrency", "per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors",
                                 "redis_commands_per_op", "redis_commands_per_op_total")} | {
        "cpu_pct": {k: round(v, 1) for k, v in step["cpu_pct_of"].items()}}


def run(quick):
    settings = Settings(quick)
    for tool in (FAKE_DRIVER, LOAD_GENERATOR):
        if not os.access(tool, os.X_OK):
            raise RuntimeError(f"{tool} is missing: run `cmake --build build` first")
    base = tempfile.mkdtemp(prefix="hearth-bench-capacity-")
    spark_home = make_fake_spark_home(os.path.join(base, "fake-spark-home"))
    redis = Redis()
    server = None
    details = {"settings": vars(settings), "users": USERS}
    try:
        server = HearthServer(redis.url, "--spark-home", spark_home,
                              # Nothing may expire during the soak: the sessions are the load's.
                              "--session-timeout", "0", "--driver-unused-timeout", "0")
        watched = Watched(server, redis)
        rest = server.url.replace("http://", "")
        sessions = Sessions(server)

        time.sleep(1.0)  # let start-up allocations settle before the baseline
        idle = {0: idle_figures(watched, settings.idle_s)}
        create_s = {}
        for count in SESSION_COUNTS:
            create_s[count] = sessions.grow_to(count)
            idle[count] = idle_figures(watched, settings.idle_s)
            benchlib.log(f"capacity: {count} sessions (created in {create_s[count]:.1f} s): server RSS "
                         f"{idle[count]['rss_mb']['server']:.1f} MB, idle CPU {idle[count]['cpu_pct']['server']:.1f}%")
        details["idle"] = idle
        details["create_seconds"] = create_s

        ids = sessions.ids
        ladders = {}
        ladders["version_rest"] = ladder("GET /version (REST)", "version", "rest", rest, settings, watched)
        ladders["get_session_rest"] = ladder("GET /sessions/{id} (REST)", "get-session", "rest", rest, settings,
                                             watched, ids)
        ladders["statement_rest"] = ladder("statement (REST)", "statement", "rest", rest, settings, watched, ids)
        ladders["version_zmq"] = ladder("GET /version (client channel)", "version", "zmq", server.client_address,
                                        settings, watched)
        ladders["statement_zmq"] = ladder("statement (client channel)", "statement", "zmq",
                                          server.client_address, settings, watched, ids)
        details["ladders"] = {name: [step_summary(s) for s in steps] for name, (_, steps) in ladders.items()}
        best = {name: b for name, (b, _) in ladders.items()}
        details["chosen"] = {name: step_summary(b) for name, b in best.items()}

        soaked = soak(server, watched, ids, settings)
        details["soak"] = soaked
        benchlib.log(f"capacity: soak {soaked['seconds']:.0f} s: server RSS {soaked['start']['server']:.1f} -> "
                     f"{soaked['end_server_mb']} MB (max {soaked['max_server_mb']}), churn cycles "
                     f"{soaked['churn_cycles']}")
        details["server_stop_exit_code"] = server.stop()
        # How the fake drivers ended when the server stopped ("exit code 0" after a shutdown).
        exits = {}
        for line in server.lines:
            if "driver " in line and " exited (" in line:
                reason = line.split(" exited (", 1)[1].rstrip(")")
                exits[reason] = exits.get(reason, 0) + 1
        details["driver_exits"] = exits
        server = None
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)

    def per_s(name):
        return best[name]["per_s"] if best[name] else None

    def cpu_of(name, who="server"):
        return best[name]["cpu_pct_of"][who] if best[name] else None

    rss = {count: idle[count]["rss_mb"]["server"] for count in idle}
    figures = {
        "statements_per_s": per_s("statement_rest"),
        "statements_per_s_client_channel": per_s("statement_zmq"),
        "gets_per_s": per_s("get_session_rest"),
        "version_gets_per_s_rest": per_s("version_rest"),
        "version_calls_per_s_client_channel": per_s("version_zmq"),
        "statements_p99_ms": best["statement_rest"]["p99_ms"] if best["statement_rest"] else None,
        "server_rss_mb_0_sessions": rss[0],
        "server_rss_mb_1_sessions": rss[1],
        "server_rss_mb_100_sessions": rss[100],
        "server_rss_mb_1000_sessions": rss[1000],
        "server_rss_kb_per_session": (rss[1000] - rss[0]) * 1024.0 / 1000.0,
        "server_cpu_pct_idle_0_sessions": idle[0]["cpu_pct"]["server"],
        "server_cpu_pct_idle_1_sessions": idle[1]["cpu_pct"]["server"],
        "server_cpu_pct_idle_100_sessions": idle[100]["cpu_pct"]["server"],
        "server_cpu_pct_idle_1000_sessions": idle[1000]["cpu_pct"]["server"],
        "server_cpu_pct_under_statements": cpu_of("statement_rest"),
        "server_cpu_pct_under_gets": cpu_of("get_session_rest"),
        "generator_cpu_pct_under_statements": cpu_of("statement_rest", "generator"),
        "redis_commands_per_statement": (best["statement_rest"]["redis_commands_per_op_total"]
                                         if best["statement_rest"] else None),
        "soak_rss_mb_start": soaked["start"]["server"],
        "soak_rss_mb_end": soaked["end_server_mb"],
        "soak_rss_mb_max": soaked["max_server_mb"],
    }

    def ratio_row(measure, value, unit, baseline_name, baseline):
        return Row(measure, fmt(value, unit), f"{fmt(baseline, unit)} ({baseline_name})",
                   benchlib.ratio(value, baseline))

    def chosen(name):
        b = best[name]
        if not b:
            return "no step with p99 < 10 ms"
        cpu = b["cpu_pct_of"]
        return (f"{b['concurrency']} worker{'s' if b['concurrency'] > 1 else ''}, p50 {b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms; CPU % of a core: "
                f"server {cpu['server']:.0f}, redis {cpu['redis']:.0f}, fake drivers {cpu['drivers']:.0f}, "
                f"generator {cpu['generator']:.0f} (sum {sum(cpu.values()):.0f} of {100 * os.cpu_count()}); "
                f"{b['redis_commands_per_op_total']:.3g} Redis commands per operation")

    def steps_line(name):
        _, steps = ladders[name]
        return "; ".join(f"{s['concurrency']}: {s['per_s']:.0f}/s p99 {s['p99_ms']:.1f} ms, server "
                         f"{s['cpu_pct_of']['server']:.0f}%" for s in steps)

    def commands(name):
        b = best[name]
        if not b:
            return "n/a"
        return ", ".join(f"{k.upper()} {v:g}" for k, v in list(b["redis_commands_per_op"].items())[:6])

    rows = [
        ratio_row("statements/s, REST (POST + long-poll GET), p99 < 10 ms", figures["statements_per_s"], "/s",
                  "GET /version/s, REST", figures["version_gets_per_s_rest"]),
        ratio_row("statements/s, client channel (call + pushed result), p99 < 10 ms",
                  figures["statements_per_s_client_channel"], "/s", "GET /version calls/s, client channel",
                  figures["version_calls_per_s_client_channel"]),
        ratio_row("GET /sessions/{id}/s, REST, p99 < 10 ms", figures["gets_per_s"], "/s", "GET /version/s, REST",
                  figures["version_gets_per_s_rest"]),
    ]
    for count in SESSION_COUNTS:
        rows.append(ratio_row(f"server RSS, {count} idle sessions", rss[count], " MB", "0 sessions", rss[0]))
    for count in SESSION_COUNTS:
        rows.append(Row(f"server CPU, idle, {count} sessions",
                        fmt(idle[count]["cpu_pct"]["server"], " % of a core"),
                        f"{fmt(idle[0]['cpu_pct']['server'], ' %')} (0 sessions)"))
    rows.append(Row("server CPU under the chosen statement load", fmt(figures["server_cpu_pct_under_statements"], " %"),
                    f"{fmt(figures['generator_cpu_pct_under_statements'], ' %')} (the generator's own)"))
    rows.append(ratio_row(f"soak RSS at the end ({soaked['seconds'] / 60:.3g} min)", figures["soak_rss_mb_end"], " MB",
                          "soak start", figures["soak_rss_mb_start"]))
    rows.append(ratio_row("soak RSS, max", figures["soak_rss_mb_max"], " MB", "soak start",
                          figures["soak_rss_mb_start"]))

    loads = soaked["loads"]

    def load_line(name):
        r = loads.get(name, {})
        if "per_s" not in r:
            return f"{name}: failed"
        return f"{name} {r['per_s']:.0f}/s (p99 {r['p99_ms']:.1f} ms, {r['errors']} errors)"

    notes = [
        "Fake drivers: `hearth-fake-driver-for-benchmarks` (bench/fake_driver), a benchmark tool that speaks the "
        "driver channel as the agent does and runs no Spark; every statement is answered at once (busy, running, "
        "available with the code echoed, idle), so these figures are the server's (and Redis's) cost alone.",
        f"Placement: shareLevel \"user\" with proxyUser u0..u9 (no authentication: proxyUser is the effective user) "
        f"→ {idle[1000]['rss_mb']['driver_processes']} fake driver processes for 1,000 sessions "
        f"({fmt(idle[1000]['rss_mb']['drivers_each_max'], ' MB')} RSS each at most). Creating the sessions took "
        f"{create_s[1]:.1f} s / {create_s[100]:.1f} s / {create_s[1000]:.1f} s (first session of each user alone, "
        "then 4 at a time).",
        "Load: `hearth-load-generator-for-benchmarks` (bench/load_generator, C++), closed loop, each worker on its "
        "own session; REST over one keep-alive HTTP/1.1 connection per worker, the client channel through "
        "hearth::clients (one Client per 8 workers, each session's subscription held). A REST statement is two "
        "requests (POST, then GET …?wait=10000 answered when it is available); a client-channel statement is one "
        "call plus pushed events. Concurrency 1, 2, 4, … until p99 ≥ 10 ms; the figure is the best step below it. "
        "Throughput ladders run with all 1,000 sessions present.",
        f"Chosen steps: REST statements: {chosen('statement_rest')}. Client-channel statements: "
        f"{chosen('statement_zmq')}. GET /sessions/{{id}}: {chosen('get_session_rest')}. GET /version (REST): "
        f"{chosen('version_rest')}.",
        f"Statement ladders (workers: throughput, p99, server CPU): REST {steps_line('statement_rest')}. "
        f"Client channel {steps_line('statement_zmq')}.",
        f"Redis commands per REST statement at the chosen step: {commands('statement_rest')} (the store is "
        f"synchronous: each is a round trip); per GET /sessions/{{id}}: {commands('get_session_rest')}.",
        "Everything (server, Redis, fake drivers, generator) shares this machine's cores: CPU figures are percent of "
        "one core; a sum near 100 × cores means the machine, not one process, was the limit.",
        f"Idle CPU is measured with no load over {settings.idle_s:g} s (heartbeats with the fake drivers, the "
        "lifecycle check every 10 s). RSS figures are hearth-server's alone; Redis at 1,000 sessions: "
        f"{fmt(idle[1000]['rss_mb']['redis'], ' MB')}.",
        f"Soak ({soaked['seconds'] / 60:.3g} min), all at once: {load_line('rest_statements')}, "
        f"{load_line('zmq_statements')}, {load_line('rest_gets')}, and {soaked['churn_cycles']} create → statement → "
        f"delete cycles of extra sessions ({len(soaked['churn_errors'])} errors). RSS slope over the second half: "
        f"{fmt(soaked['second_half_mb_per_min'], ' MB/min')}. When the server stopped, its fake drivers ended: "
        + (", ".join(f"{n} × {why}" for why, n in details["driver_exits"].items()) or "n/a") + ".",
    ]
    return Report(name="capacity", title="Server capacity (fake drivers, no Spark)", figures=figures, rows=rows,
                  notes=notes, details=details)
