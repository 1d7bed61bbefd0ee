"""A crash or a restart of hearth-server loses nothing and runs nothing twice.

Drivers are real Spark drivers; the server is killed with SIGKILL (or stopped with SIGTERM) while
statements wait and run, and a new server process on the same Redis and data directory takes the
drivers over. Every statement and job writes a line to a tally file outside Spark when it runs,
so "ran exactly once" is checked where no server or driver state can fake it.
"""
import os
import signal
import uuid

import psutil
import pytest

from hearth_harness import (HearthServer, Redis, command_line, driver_processes, ok_text,
                            wait_until)
from job_sources import build_job_jar

FAST_CONF = {"spark.ui.enabled": "false"}
# Short heartbeats, so that agents notice a dead server and say hello again quickly.
SERVER_ARGS = ("--heartbeat-interval", "500ms", "--driver-lost-timeout", "90s")

TALLY_JOB = {
    # Waits for the gate file args[0], appends args[2] to the tally file args[1], returns args[2].
    "GateAndTally": """
public class GateAndTally implements HearthJob<String> {
  @Override
  public String call(JobContext ctx) throws Exception {
    Path gate = Paths.get(ctx.args().get(0));
    long deadline = System.currentTimeMillis() + 300_000;
    while (!Files.exists(gate)) {
      if (System.currentTimeMillis() > deadline) {
        throw new TimeoutException("the gate " + gate + " was never opened");
      }
      Thread.sleep(20);
    }
    Files.writeString(Paths.get(ctx.args().get(1)), ctx.args().get(2) + "\\n",
        java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
    return ctx.args().get(2);
  }
}
""",
}


@pytest.fixture
def redis():
    """A Redis of the test's own: the restarted servers adopt everything in it."""
    server = Redis()
    yield server
    server.stop()


class Tally:
    """A file outside Spark that statements and jobs append their tag to when they run."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "tally.txt")
        open(self.path, "w").close()

    def statement(self, tag, value, sleep=0.0):
        return (f"import time\ntime.sleep({sleep})\n"
                f"with open({self.path!r}, 'a') as _tally:\n    _tally.write({tag!r} + '\\n')\n"
                f"{value}")

    def counts(self):
        with open(self.path) as f:
            lines = [line.strip() for line in f if line.strip()]
        return {tag: lines.count(tag) for tag in set(lines)}


def create_session(server, body):
    r = server.post("/sessions", json=dict(body, conf=FAST_CONF))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def state_of(server, session_id):
    return server.get(f"/sessions/{session_id}/state").json()["state"]


def wait_idle(server, session_id, timeout=240):
    def idle():
        state = state_of(server, session_id)
        assert state not in ("error", "dead", "killed"), f"session {session_id} is {state}\n{server.output()}"
        return state == "idle"
    wait_until(idle, timeout, f"session {session_id} to be idle", interval=0.1)


def final_statement(server, session_id, statement_id, timeout=180):
    def done():
        st = server.get(f"/sessions/{session_id}/statements/{statement_id}").json()
        return st if st["state"] in ("available", "cancelled") else None
    return wait_until(done, timeout, f"statement {statement_id} of session {session_id}")


def driver_jvms(names):
    """The driver JVM processes of the sessions with these names (own drivers) and of shared drivers."""
    jvms = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "io.hearth.driver.HearthDriver" in cmdline and any(n in cmdline for n in names):
            jvms.append(proc)
    return jvms


def restart(old, redis, *extra, keep_drivers=True):
    """A new server process on the old one's Redis, directories and ports: the ports must be free
    at once (no child of the old server may hold them)."""
    return HearthServer(redis.url, "--port", str(old.port), "--client-port", old.client_address.split(":")[1],
                        *SERVER_ARGS, *extra, keep_drivers=keep_drivers, data_dir=old.data_dir,
                        shared_dir=old.shared_dir)


def test_a_killed_server_loses_nothing_and_runs_nothing_twice(redis, tmp_path):
    """Three rounds: statements running and waiting on an own and a shared driver, and a running
    job, when the server is SIGKILLed; the drivers are frozen meanwhile, so the restarted server
    shows the sessions recovering; then everything finishes, once, with the right output."""
    tally = Tally(str(tmp_path))
    jar = build_job_jar(str(tmp_path / "jar"), "e2erecovery", TALLY_JOB, f"recovery-{uuid.uuid4().hex[:8]}.jar")
    server = HearthServer(redis.url, *SERVER_ARGS, keep_drivers=True)
    tag = uuid.uuid4().hex[:8]
    own_name, shared_name = f"e2e-rec-own-{tag}", f"hearth-shared-anonymous"
    sessions = [create_session(server, {"kind": "pyspark", "name": own_name}),
                create_session(server, {"kind": "pyspark", "shareLevel": "user"}),
                create_session(server, {"kind": "pyspark", "shareLevel": "user"})]
    try:
        for sid in sessions:
            wait_idle(server, sid)
        r = server.post(f"/sessions/{sessions[1]}/upload-jar",
                        files={"jar": (os.path.basename(jar), open(jar, "rb").read())})
        assert r.status_code == 200, r.text
        expected = {}  # (session, statement id) -> the text/plain output
        jobs = {}  # job id -> tag
        for round_number in range(3):
            submitted = []
            for sid in sessions:
                for i, sleep in enumerate((2.0, 0.0, 0.0)):
                    stag = f"r{round_number}-s{sid}-{i}"
                    value = 1000 * round_number + 10 * sid + i
                    st = server.post(f"/sessions/{sid}/statements",
                                     json={"code": tally.statement(stag, value, sleep)}).json()
                    submitted.append((sid, st["id"], stag))
                    expected[(sid, st["id"])] = str(value)
            gate = tmp_path / f"gate-{round_number}"
            jtag = f"r{round_number}-job"
            r = server.post(f"/sessions/{sessions[1]}/jobs", json={
                "className": "e2erecovery.GateAndTally", "args": [str(gate), tally.path, jtag]})
            assert r.status_code == 201, r.text
            jobs[r.json()["id"]] = jtag
            first = submitted[0]
            wait_until(lambda: server.get(f"/sessions/{first[0]}/statements/{first[1]}").json()["state"]
                       == "running", 60, "the first statement to run")
            wait_until(lambda: server.get(f"/sessions/{sessions[1]}/jobs/{list(jobs)[-1]}").json()["state"]
                       == "running", 60, "the job to run")
            # Freeze the drivers, so the restarted server finds them not (yet) back.
            jvms = driver_jvms([own_name, shared_name])
            assert len(jvms) == 2, [command_line(p) for p in jvms]
            for jvm in jvms:
                jvm.send_signal(signal.SIGSTOP)
            server.kill()
            server = restart(server, redis)
            for sid in sessions:
                assert state_of(server, sid) == "recovering"
            drivers = server.get("/drivers").json()["drivers"]
            assert sorted(d["state"] for d in drivers) == ["recovering", "recovering"], drivers
            for jvm in jvms:
                jvm.send_signal(signal.SIGCONT)
            open(gate, "w").close()
            for sid, statement_id, stag in submitted:
                st = final_statement(server, sid, statement_id)
                assert ok_text(st) == expected[(sid, statement_id)], st
            for sid in sessions:
                wait_idle(server, sid)
        for job_id, jtag in jobs.items():
            job = wait_until(lambda: (lambda j: j if j["state"] in ("succeeded", "failed", "cancelled") else None)(
                server.get(f"/sessions/{sessions[1]}/jobs/{job_id}").json()), 120, f"job {job_id}")
            assert job["state"] == "succeeded" and job["result"] == jtag, job
        counts = tally.counts()
        assert sorted(counts.values()) == [1] * len(counts), counts
        assert len(counts) == 3 * len(sessions) * 3 + len(jobs), counts
        # The sessions go on as before: the namespace of each survived.
        for (sid, statement_id), value in list(expected.items())[:1]:
            st = server.post(f"/sessions/{sid}/statements", json={"code": "_tally.closed"}).json()
            assert ok_text(final_statement(server, sid, st["id"])) == "True"
    except BaseException:
        print("--- server output ---\n" + server.output())
        raise
    finally:
        for sid in sessions:
            server.delete(f"/sessions/{sid}")
        for d in server.get("/drivers").json().get("drivers", []):
            server.delete(f"/drivers/{d['id']}")
        server.stop()


def test_sigterm_keeps_the_drivers_and_a_new_server_takes_them_over(redis):
    """A planned restart (SIGTERM, the default settings) ends nobody's session: the driver keeps
    running and the Python namespace is still there behind the new server."""
    name = f"e2e-rec-term-{uuid.uuid4().hex[:8]}"
    server = HearthServer(redis.url, *SERVER_ARGS, keep_drivers=True)
    sid = create_session(server, {"kind": "pyspark", "name": name})
    try:
        wait_idle(server, sid)
        st = server.post(f"/sessions/{sid}/statements", json={"code": "x = 41\nx"}).json()
        assert ok_text(final_statement(server, sid, st["id"])) == "41"
        jvm = driver_jvms([name])
        server.keep_dirs = True
        assert server.stop() == 0, server.output()
        assert [p.is_running() for p in jvm] == [True], "the driver stopped with the server"
        server = restart(server, redis)
        wait_idle(server, sid, timeout=60)
        st = server.post(f"/sessions/{sid}/statements", json={"code": "x + 1"}).json()
        assert ok_text(final_statement(server, sid, st["id"])) == "42"
    except BaseException:
        print("--- server output ---\n" + server.output())
        raise
    finally:
        server.delete(f"/sessions/{sid}")
        server.stop()
    wait_until(lambda: not driver_processes(name), 60, "the driver to be gone after DELETE")


def test_stop_drivers_on_shutdown_ends_them(redis):
    """The setting that restores "stop everything": SIGTERM stops the driver and the session is
    dead for the next server."""
    name = f"e2e-rec-stop-{uuid.uuid4().hex[:8]}"
    server = HearthServer(redis.url, *SERVER_ARGS, keep_drivers=False)
    sid = create_session(server, {"kind": "pyspark", "name": name})
    wait_idle(server, sid)
    server.keep_dirs = True
    assert server.stop() == 0, server.output()
    wait_until(lambda: not driver_processes(name), 60, "the driver to stop with the server")
    server = restart(server, redis)
    try:
        assert state_of(server, sid) == "dead"
    finally:
        server.stop()
