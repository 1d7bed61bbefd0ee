"""The agent's half of the resynchronisation after a server restart (protocol/PROTOCOL.md,
"Reconnect and resynchronisation"), on a real Spark driver: a re-sent execute or start_job never
runs the code again and is answered from what the agent keeps, and after a reconnect the agent's
driver_state lists the sessions it holds.

The server's side is played by the test (ScriptedServer, a ROUTER socket speaking the driver
channel), so that requests are re-sent exactly when the test wants and the "restart" is a new
socket on the same port. What the code ran is counted in files the statements and jobs append
to, so "never twice" is what the driver did, not what it said.
"""
import json
import os
import secrets
import subprocess
import sys
import time
import uuid

import pytest
import zmq

from hearth_harness import HEARTH_AGENT_JAR, wait_until
from job_sources import build_job_jar, spark_jars

HEARTBEAT_MS = 500  # the agent says hello again after 3 silent intervals: 1.5 s
VERSION = 3

JOB_SOURCES = {
    # Appends one "x" to the file args[0] and returns how many there are: the times it ran.
    "Tally": """
public class Tally implements HearthJob<Integer> {
  @Override
  public Integer call(JobContext ctx) throws Exception {
    Path tally = Paths.get(ctx.args().get(0));
    Files.writeString(tally, "x", java.nio.file.StandardOpenOption.CREATE,
        java.nio.file.StandardOpenOption.APPEND);
    return Files.readString(tally).length();
  }
}
""",
    # Tally, after waiting until the file args[1] exists.
    "GatedTally": """
public class GatedTally implements HearthJob<Integer> {
  @Override
  public Integer call(JobContext ctx) throws Exception {
    Path gate = Paths.get(ctx.args().get(1));
    long deadline = System.currentTimeMillis() + 300_000;
    while (!Files.exists(gate) && System.currentTimeMillis() < deadline) {
      Thread.sleep(20);
    }
    Path tally = Paths.get(ctx.args().get(0));
    Files.writeString(tally, "x", java.nio.file.StandardOpenOption.CREATE,
        java.nio.file.StandardOpenOption.APPEND);
    return Files.readString(tally).length();
  }
}
""",
}


class ScriptedServer:
    """The server's end of the driver channel, scripted by the test: one ROUTER socket on a port
    of 127.0.0.1, one driver. It answers hello with welcome and sends heartbeats while a test
    waits; everything else the driver sends is kept in `received`, in order."""

    def __init__(self, driver_id, secret):
        self.driver_id = driver_id
        self.secret = secret
        self.context = None
        self.port = None
        self.socket = None
        self.peer = None
        self.hellos = []
        self.received = []
        self.alive = None  # raises when the driver is gone, so a wait fails at once
        self.bind()

    def bind(self):
        # A context per socket: terminating it is what closes the listening port at once.
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self.port is None:
            self.port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        else:
            self.socket.bind(f"tcp://127.0.0.1:{self.port}")
        self.peer = None
        self.last_heartbeat = 0.0

    def restart(self):
        """As if hearth-server died and a new one started on the same port: the old socket (and
        whatever was queued in it) is gone, the new one knows no peer."""
        self.socket.close()
        self.context.term()
        self.bind()

    @property
    def endpoint(self):
        return f"tcp://127.0.0.1:{self.port}"

    def send(self, message_type, body):
        assert self.peer is not None, "no driver has said hello"
        frame = json.dumps({"v": VERSION, "type": message_type, "body": body}).encode()
        self.socket.send_multipart([self.peer, frame])

    def pump(self, seconds):
        """Receives for up to `seconds`, answering hellos and keeping heartbeats going."""
        deadline = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            if self.peer is not None and now - self.last_heartbeat >= HEARTBEAT_MS / 1000:
                self.send("heartbeat", {})
                self.last_heartbeat = now
            left = deadline - now
            if left <= 0:
                return
            if not self.socket.poll(max(1, int(min(left, HEARTBEAT_MS / 2000) * 1000))):
                continue
            peer, frame = self.socket.recv_multipart()
            message = json.loads(frame)
            if message["type"] == "hello":
                body = message["body"]
                assert message["v"] == 1 and body["versions"] == [VERSION], message
                assert body["driver_id"] == self.driver_id and body["secret"] == self.secret
                self.hellos.append(time.monotonic())
                self.peer = peer
                self.send("welcome", {"version": VERSION, "heartbeat_ms": HEARTBEAT_MS})
            elif message["type"] != "heartbeat":
                assert message["v"] == VERSION, message
                self.received.append(message)

    def expect(self, predicate, timeout, what, since=None):
        """Pumps until a message received from now on (or from received[since] on) matches
        predicate; returns it."""
        start = len(self.received) if since is None else since

        def found():
            if self.alive:
                self.alive()
            self.pump(0.05)
            return next((m for m in self.received[start:] if predicate(m)), None)
        return wait_until(found, timeout, what, interval=0)

    def updates(self, message_type, session_id, key, item_id):
        """The bodies of the statement_update or job_update messages received for one item."""
        return [m["body"] for m in self.received if m["type"] == message_type
                and m["body"]["session_id"] == session_id and m["body"][key] == item_id]

    def close(self):
        self.socket.close()
        self.context.term()


def is_update(message_type, session_id, key, item_id, states):
    return lambda m: (m["type"] == message_type and m["body"]["session_id"] == session_id
                      and m["body"][key] == item_id and m["body"]["state"] in states)


def statement_done(session_id, statement_id):
    return is_update("statement_update", session_id, "statement_id", statement_id, {"available", "cancelled"})


def statement_running(session_id, statement_id):
    return is_update("statement_update", session_id, "statement_id", statement_id, {"running"})


def job_done(session_id, job_id):
    return is_update("job_update", session_id, "job_id", job_id, {"succeeded", "failed", "cancelled"})


def tally_code(path):
    """pyspark code that appends one "x" to path and shows how many there are."""
    return f"with open({str(path)!r}, 'a') as f:\n    f.write('x')\nlen(open({str(path)!r}).read())"


def text_of(update):
    assert update["state"] == "available" and update["output"]["status"] == "ok", update
    return update["output"]["data"]["text/plain"]


class Agent:
    """The real agent under spark-submit (pyspark's Spark), connected to a ScriptedServer."""

    def __init__(self, directory):
        assert HEARTH_AGENT_JAR, "HEARTH_AGENT_JAR is not set (run the tests through ctest)"
        self.driver_id = "d-resync-" + uuid.uuid4().hex[:8]
        secret = secrets.token_hex(32)
        self.server = ScriptedServer(self.driver_id, secret)
        secret_file = os.path.join(directory, "secret")
        with open(os.open(secret_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(secret)
        spark_home = os.path.dirname(spark_jars())
        self.log_path = os.path.join(directory, "driver.log")
        env = dict(os.environ, SPARK_HOME=spark_home, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [os.path.join(spark_home, "bin", "spark-submit"), "--master", "local[2]",
                 "--name", self.driver_id, "--class", "io.hearth.driver.HearthDriver",
                 "--conf", "spark.ui.enabled=false", os.path.abspath(HEARTH_AGENT_JAR),
                 "--server", self.server.endpoint, "--driver-id", self.driver_id,
                 "--secret-file", secret_file, "--idle-timeout", "2m"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        self.server.alive = self.check_alive
        try:
            self.server.expect(lambda m: m["type"] == "driver_state" and m["body"]["state"] == "ready", 240,
                               "driver_state ready")
        except AssertionError:
            self.stop()
            raise

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the driver exited ({self.proc.returncode}):\n{self.log()}")

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-20000:]

    def open_session(self, session_id, kind="pyspark"):
        """Sends open_session; returns the session_state that answers it."""
        self.server.send("open_session", {"session_id": session_id, "kind": kind})
        return self.server.expect(lambda m: m["type"] == "session_state" and m["body"]["session_id"] == session_id,
                                  60, f"session {session_id} to open")["body"]

    def execute(self, session_id, statement_id, code, kind="pyspark"):
        self.server.send("execute", {"session_id": session_id, "statement_id": statement_id, "kind": kind,
                                     "code": code})

    def stop(self):
        self.server.alive = None
        if self.proc.poll() is None and self.server.peer is not None:
            self.server.send("shutdown", {})
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.server.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    agent = Agent(str(tmp_path_factory.mktemp("resync-agent")))
    yield agent
    agent.stop()


@pytest.fixture
def checked(agent, request):
    """The agent; prints what it sent and its log when the test fails."""
    failed_before = request.session.testsfailed
    yield agent
    if request.session.testsfailed > failed_before:
        print("--- received ---\n" + "\n".join(json.dumps(m)[:400] for m in agent.server.received[-100:]))
        print("--- driver log ---\n" + agent.log())


def test_a_re_sent_execute_never_runs_the_code_again(checked, tmp_path):
    agent, server, sid = checked, checked.server, 1
    agent.open_session(sid)
    tally = tmp_path / "tally"

    # Finished: the same final update again, exactly as first sent; the code ran once.
    agent.execute(sid, 0, tally_code(tally))
    first = server.expect(statement_done(sid, 0), 180, "statement 0")["body"]
    assert text_of(first) == "1"
    agent.execute(sid, 0, tally_code(tally))
    again = server.expect(statement_done(sid, 0), 30, "the answer to the re-sent statement 0")["body"]
    assert again == first
    assert tally.read_text() == "x"

    # Running: answered "running" (same start time); queued: not answered; each runs once.
    agent.execute(sid, 1, "import time\ntime.sleep(4)\n" + tally_code(tally))
    running = server.expect(statement_running(sid, 1), 30, "statement 1 to run")["body"]
    agent.execute(sid, 2, tally_code(tally))
    agent.execute(sid, 1, tally_code(tally))
    agent.execute(sid, 2, "raise Exception('the re-sent code ran')")
    answer = server.expect(statement_running(sid, 1), 30, "the answer to the re-sent statement 1")["body"]
    assert answer == dict(running, progress=answer["progress"]), answer
    # Statements run in order: once 3 finished, everything of 1 and 2 has arrived.
    agent.execute(sid, 3, tally_code(tally))
    server.expect(statement_done(sid, 3), 120, "statement 3")
    assert [u["state"] for u in server.updates("statement_update", sid, "statement_id", 1)] == \
        ["running", "running", "available"]
    assert [u["state"] for u in server.updates("statement_update", sid, "statement_id", 2)] == \
        ["running", "available"]
    assert [text_of(server.updates("statement_update", sid, "statement_id", i)[-1]) for i in (1, 2, 3)] == \
        ["2", "3", "4"]
    assert tally.read_text() == "xxxx"

    # A statement cancelled while queued is finished too: its re-send gets "cancelled" again.
    mark = len(server.received)
    agent.execute(sid, 4, "import time\ntime.sleep(3)")
    server.expect(statement_running(sid, 4), 30, "statement 4 to run")
    agent.execute(sid, 5, tally_code(tally))
    server.send("cancel_statement", {"session_id": sid, "statement_id": 5})
    cancelled = server.expect(statement_done(sid, 5), 30, "statement 5 cancelled")["body"]
    assert cancelled["state"] == "cancelled" and cancelled["started"] == 0
    agent.execute(sid, 5, tally_code(tally))
    assert server.expect(statement_done(sid, 5), 30, "the answer to the re-sent statement 5")["body"] == cancelled
    server.expect(statement_done(sid, 4), 60, "statement 4", since=mark)
    assert tally.read_text() == "xxxx"


def test_a_re_sent_start_job_never_runs_the_job_again(checked, tmp_path):
    agent, server, sid = checked, checked.server, 2
    jar = build_job_jar(str(tmp_path / "jar"), "e2eresync", JOB_SOURCES, "resync-jobs.jar")
    agent.open_session(sid)
    tally = tmp_path / "job-tally"
    gate = tmp_path / "gate"

    def start(job_id, class_name, args):
        server.send("start_job", {"session_id": sid, "job_id": job_id, "class_name": f"e2eresync.{class_name}",
                                  "args": args, "conf": {}, "jar": "file://" + jar})

    start(0, "Tally", [str(tally)])
    first = server.expect(job_done(sid, 0), 180, "job 0")["body"]
    assert first["state"] == "succeeded" and first["result"] == 1, first
    start(0, "Tally", [str(tally)])
    assert server.expect(job_done(sid, 0), 30, "the answer to the re-sent job 0")["body"] == first

    start(1, "GatedTally", [str(tally), str(gate)])
    running = server.expect(is_update("job_update", sid, "job_id", 1, {"running"}), 60, "job 1 to run")["body"]
    start(1, "GatedTally", [str(tally), str(gate)])
    answer = server.expect(is_update("job_update", sid, "job_id", 1, {"running"}), 30,
                           "the answer to the re-sent job 1")["body"]
    assert answer["started"] == running["started"] > 0, (running, answer)
    gate.write_text("open")
    done = server.expect(job_done(sid, 1), 60, "job 1")["body"]
    assert done["state"] == "succeeded" and done["result"] == 2, done
    assert tally.read_text() == "xx"


def test_after_a_server_restart_nothing_is_lost_and_nothing_runs_twice(checked, tmp_path):
    agent, server, sid, gone = checked, checked.server, 3, 4
    agent.open_session(sid)
    agent.open_session(gone)
    tally = tmp_path / "tally"
    agent.execute(sid, 0, tally_code(tally))
    before = server.expect(statement_done(sid, 0), 180, "statement 0")["body"]

    # Statement 1 finishes while no server is there; the "server" dies right after sending it.
    agent.execute(sid, 1, "import time\ntime.sleep(3)\n" + tally_code(tally))
    server.expect(statement_running(sid, 1), 30, "statement 1 to run")
    hellos = len(server.hellos)
    server.restart()
    server.received.clear()
    wait_until(lambda: server.pump(0.1) or tally.read_text() == "xx", 60, "statement 1 to finish")
    server.expect(lambda m: m["type"] == "driver_state", 30, "driver_state after the new welcome", since=0)
    assert len(server.hellos) == hellos + 1
    # It lists the sessions the agent holds (the earlier tests' too, in this module), in order.
    state = next(m["body"] for m in server.received if m["type"] == "driver_state")
    assert state["state"] == "ready" and {sid, gone} <= set(state["sessions"]), state
    assert state["sessions"] == sorted(state["sessions"]), state

    # The new server's resynchronisation: re-open (the agent answers the current state, idle:
    # statement 1 has finished), re-send the unfinished statements in id order (1, whose final
    # update the new server may have missed, and 2, whose execute never reached the agent), and
    # close the session it no longer wants.
    assert agent.open_session(sid) == {"session_id": sid, "state": "idle"}
    mark = len(server.received)
    agent.execute(sid, 1, tally_code(tally))
    agent.execute(sid, 2, tally_code(tally))
    server.send("close_session", {"session_id": gone})
    after = server.expect(statement_done(sid, 1), 30, "the final update of statement 1", since=mark)["body"]
    assert text_of(after) == "2"
    assert after["completed"] >= after["started"] > before["completed"]
    assert text_of(server.expect(statement_done(sid, 2), 60, "statement 2", since=mark)["body"]) == "3"
    server.expect(lambda m: m["type"] == "session_state" and m["body"] == {"session_id": gone, "state": "dead"},
                  60, "the unwanted session to be closed", since=mark)
    # Statement 0, finished before the restart, is answered from what the agent kept.
    agent.execute(sid, 0, tally_code(tally))
    assert server.expect(statement_done(sid, 0), 30, "statement 0 again")["body"] == before
    assert tally.read_text() == "xxx"

    # A later reconnect lists the sessions the agent holds then: not the closed one.
    server.restart()
    server.received.clear()
    later = server.expect(lambda m: m["type"] == "driver_state", 30, "driver_state after another welcome",
                          since=0)["body"]
    assert sid in later["sessions"] and gone not in later["sessions"], later
