"""A scripted stand-in for the Hearth driver agent, FOR FAULT INJECTION AND PROTOCOL TESTS ONLY.

It speaks the driver channel (protocol/PROTOCOL.md, first part, version 3) exactly as the agent
does: hello (v 1) with the secret it reads from --secret-file and then deletes, driver_state
ready (listing the sessions it holds) after every welcome, heartbeats, open_session /
close_session / shutdown / cancel_statement / add_artifact / complete answered as the agent
answers them, and a re-sent execute or start_job (the server's resynchronisation after a
restart) answered as the agent answers it: ignored while queued, "running" while running, the
final update again once finished (the last RETAINED_PER_SESSION per session; an older one with a
ResultLost error, a job with failed). It runs no Spark and no Python code:
a statement's code is a one-line script (see run_script) that decides what the driver reports,
so a test can make a driver produce many events, huge outputs, log lines, errors or a statement
that runs until the test lets it finish.

It must never stand in for Spark in a test that claims Spark behaviour: tests that say what a
Spark statement does run the real agent (tests/e2e).

The server launches it through make_fake_spark_home(): a directory whose bin/spark-submit is a
shim that execs this file with spark-submit's arguments; only the agent's arguments (--server,
--driver-id, --secret-file, --idle-timeout) are read. Each driver appends what it received to
<trace dir>/<driver id>.jsonl (one JSON object per line, see Trace), so tests can check what a
driver was sent (e.g. the bytes of an uploaded jar).

Scripts (the first line of the code that is neither blank nor starts with '#'; other lines are
ignored, so tests can pad code to make events bigger):
  echo TEXT          available, text/plain TEXT
  big N              available, text/plain big_text(N) (N bytes)
  progress K [MS]    K running updates with rising progress (MS ms apart, default 0), then
                     available with text/plain "progress K done"
  wait PATH          running until the file PATH exists (available with its content) or a
                     cancel arrives (cancelled)
  fail               available with an error output (ename FakeError)
  lines K            prints K lines to stdout (the server turns them into log events), then
                     available with text/plain "printed K lines"
Anything else is answered with an error output (ename FakeScriptError).
"""
import hashlib
import json
import os
import queue
import shlex
import stat
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import OrderedDict, deque

DRIVER_VERSION = 3
HELLO_VERSION = 1
RETAINED_PER_SESSION = 1000  # final updates kept for re-sent requests, as the agent (no byte bound)
COMMANDS = ("echo", "big", "progress", "wait", "fail", "lines")


def big_text(n):
    """The text/plain output of `big N`: numbered lines, cut to exactly n bytes (ASCII), so a
    reassembly that drops, repeats or reorders a piece shows."""
    line_count = n // 9 + 1
    return "".join("%08d\n" % i for i in range(line_count))[:n]


def log_line(session_id, statement_id, index):
    """The stdout line `lines K` prints as its index-th line."""
    return f"fake-driver log line {index} of session {session_id} statement {statement_id}"


def make_fake_spark_home(base_dir, python=sys.executable):
    """Creates <base_dir>/spark-home/bin/spark-submit, a shim that execs this fake driver with
    spark-submit's arguments, and <base_dir>/traces for the drivers' traces.
    Returns (spark_home, trace_dir)."""
    spark_home = os.path.join(base_dir, "spark-home")
    trace_dir = os.path.join(base_dir, "traces")
    os.makedirs(os.path.join(spark_home, "bin"), exist_ok=True)
    os.makedirs(trace_dir, exist_ok=True)
    shim = os.path.join(spark_home, "bin", "spark-submit")
    with open(shim, "w") as out:
        out.write("#!/bin/sh\n"
                  "# Test shim: the 'Spark driver' is a scripted fake (fault injection only).\n"
                  f"exec {shlex.quote(python)} {shlex.quote(os.path.abspath(__file__))} "
                  f"--trace-dir {shlex.quote(trace_dir)} \"$@\"\n")
    os.chmod(shim, os.stat(shim).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return spark_home, trace_dir


class Trace:
    """Reads the traces the fake drivers of one spark home wrote. Each line is
    {"driver": id, "pid": n, "received": message} (the first line of a file has no "received";
    for add_artifact with a readable file: URI, "artifact": {"size", "sha256"} is added)."""

    def __init__(self, trace_dir):
        self.trace_dir = trace_dir

    def records(self):
        out = []
        for name in sorted(os.listdir(self.trace_dir)):
            if not name.endswith(".jsonl"):
                continue
            with open(os.path.join(self.trace_dir, name)) as f:
                for line in f:
                    if line.endswith("\n"):  # a line being written is read next time
                        out.append(json.loads(line))
        return out

    def received(self, message_type):
        return [r for r in self.records() if r.get("received", {}).get("type") == message_type]

    def pids(self):
        return [r["pid"] for r in self.records() if "received" not in r]


def _now_ms():
    return int(time.time() * 1000)


def _frame(message_type, body, v=DRIVER_VERSION):
    return json.dumps({"v": v, "type": message_type, "body": body}, separators=(",", ":")).encode()


class _Statement:
    def __init__(self, statement_id, code):
        self.id = statement_id
        self.code = code
        self.cancel = threading.Event()
        self.started = 0
        self.progress = 0.0


class _Session:
    """One session: a thread runs its statements in order, one at a time."""

    def __init__(self, driver, session_id):
        self.driver = driver
        self.id = session_id
        self.lock = threading.Lock()
        self.queued = deque()
        self.known_ids = set()
        self.final_updates = OrderedDict()  # statement id -> body of its final update, oldest first
        self.running = None
        self.closing = False
        self.work = threading.Condition(self.lock)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def execute(self, statement_id, code):
        with self.lock:
            if self.closing:
                return
            if statement_id in self.known_ids:
                self._answer_duplicate(statement_id)  # re-sent after a reconnect: never run twice
                return
            self.known_ids.add(statement_id)
            self.queued.append(_Statement(statement_id, code))
            self.work.notify()

    def _answer_duplicate(self, statement_id):
        """A re-sent execute, answered as the agent does. Called with the lock held."""
        if any(statement.id == statement_id for statement in self.queued):
            return
        if self.running is not None and self.running.id == statement_id:
            self.driver.statement_update(self.id, self.running, "running", self.running.progress)
        elif statement_id in self.final_updates:
            self.driver.send("statement_update", self.final_updates[statement_id])
        else:
            self.driver.send("statement_update", {
                "session_id": self.id, "statement_id": statement_id, "state": "available", "progress": 1.0,
                "started": 0, "completed": _now_ms(), "output": {
                    "status": "error", "execution_count": statement_id, "ename": "ResultLost",
                    "evalue": f"statement {statement_id} of session {self.id} finished while the server was "
                              f"away, and the fake driver no longer keeps its result", "traceback": []}})

    def cancel(self, statement_id):
        with self.lock:
            for statement in list(self.queued):
                if statement.id == statement_id:
                    self.queued.remove(statement)
                    self.driver.statement_update(self.id, statement, "cancelled", 1.0, completed=_now_ms(),
                                                 final=self)
                    return
            if self.running is not None and self.running.id == statement_id:
                self.running.cancel.set()

    def close(self):
        """Drops queued statements (no update), cancels the running one; the thread then answers
        session_state dead and ends."""
        with self.lock:
            self.closing = True
            self.queued.clear()
            if self.running is not None:
                self.running.cancel.set()
            self.work.notify()

    def _run(self):
        busy = False
        while True:
            with self.lock:
                while not self.queued and not self.closing:
                    if busy:
                        busy = False
                        self.driver.send("session_state", {"session_id": self.id, "state": "idle"})
                    self.work.wait()
                if self.closing:
                    break
                statement = self.queued.popleft()
                self.running = statement
            if not busy:
                busy = True
                self.driver.send("session_state", {"session_id": self.id, "state": "busy"})
            self._execute(statement)
        self.driver.send("session_state", {"session_id": self.id, "state": "dead"})
        self.driver.session_ended(self.id)

    def _execute(self, statement):
        statement.started = _now_ms()
        update = self.driver.statement_update
        update(self.id, statement, "running", 0.0)
        try:
            outcome = run_script(self, statement)
        except Exception as e:  # a broken script is the statement's error, never the driver's end
            outcome = ("error", "FakeDriverBug", repr(e))
        # Under the lock, with `running` cleared at once: a re-sent execute finds either the
        # running statement or its final update, never "running" after the final update.
        with self.lock:
            if outcome[0] == "cancelled":
                update(self.id, statement, "cancelled", 1.0, completed=_now_ms(), final=self)
            elif outcome[0] == "ok":
                update(self.id, statement, "available", 1.0, completed=_now_ms(), final=self, output={
                    "status": "ok", "execution_count": statement.id, "data": {"text/plain": outcome[1]}})
            else:
                _, ename, evalue = outcome
                update(self.id, statement, "available", 1.0, completed=_now_ms(), final=self, output={
                    "status": "error", "execution_count": statement.id, "ename": ename, "evalue": evalue,
                    "traceback": [f"Traceback (fake driver, statement {statement.id}):\n", f"{ename}: {evalue}\n"]})
            self.running = None


def _script_line(code):
    for line in code.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    return ""


def run_script(session, statement):
    """Runs one statement's script. Returns ("ok", text), ("error", ename, evalue) or
    ("cancelled",)."""
    line = _script_line(statement.code)
    command, _, argument = line.partition(" ")
    argument = argument.strip()
    if command == "echo":
        return ("ok", argument)
    if command == "big":
        return ("ok", big_text(int(argument)))
    if command == "progress":
        parts = argument.split()
        count = int(parts[0])
        interval = int(parts[1]) / 1000.0 if len(parts) > 1 else 0.0
        for i in range(1, count + 1):
            # The fake's own pace (a scripted driver), not a test waiting for something.
            if interval and statement.cancel.wait(interval):
                return ("cancelled",)
            if statement.cancel.is_set():
                return ("cancelled",)
            session.driver.statement_update(session.id, statement, "running", i / (count + 1))
        return ("ok", f"progress {count} done")
    if command == "wait":
        while not os.path.exists(argument):
            if statement.cancel.wait(0.02):  # the fake polls the file; the test creates it
                return ("cancelled",)
        with open(argument) as f:
            return ("ok", f.read())
    if command == "fail":
        return ("error", "FakeError", "the script said fail")
    if command == "lines":
        count = int(argument)
        for i in range(count):
            print(log_line(session.id, statement.id, i), flush=True)
        return ("ok", f"printed {count} lines")
    return ("error", "FakeScriptError", f"unknown fake-driver script {line!r} (known: {', '.join(COMMANDS)})")


class FakeDriver:
    """The driver process: the main thread owns the DEALER socket; session threads hand it their
    messages through an outbox and a wake-up pipe."""

    def __init__(self, server, driver_id, secret, idle_timeout_s, trace_path):
        import zmq  # imported here so tests can import the helpers above without pyzmq
        self.zmq = zmq
        self.server = server
        self.driver_id = driver_id
        self.secret = secret
        self.idle_timeout_s = idle_timeout_s
        self.trace = open(trace_path, "a")
        self.trace_lock = threading.Lock()
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 2000)
        self.socket.connect(server)
        self.outbox_lock = threading.Lock()
        self.outbox = deque()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        self.sessions = {}
        self.sessions_lock = threading.Lock()
        # (session id, job id) -> body of the job's final update, oldest first (main thread only).
        self.job_updates = OrderedDict()
        self.welcomed = False
        self.heartbeat_s = 2.0  # until the first welcome (PROTOCOL.md "Start-up")
        self.shutting_down = False
        self._record({"driver": driver_id, "pid": os.getpid()})

    def _record(self, record):
        with self.trace_lock:
            self.trace.write(json.dumps(record) + "\n")
            self.trace.flush()

    # ---- called from any thread ----
    def send(self, message_type, body):
        with self.outbox_lock:
            self.outbox.append(_frame(message_type, body))
        os.write(self.wake_write, b"x")

    def statement_update(self, session_id, statement, state, progress, completed=0, output=None, final=None):
        """Sends an update of the statement. A final one (final: the statement's _Session, whose
        lock the caller holds) is kept for a re-sent execute."""
        body = {"session_id": session_id, "statement_id": statement.id, "state": state,
                "progress": progress, "started": statement.started, "completed": completed}
        if output is not None:
            body["output"] = output
        statement.progress = progress
        if final is not None:
            final.final_updates[statement.id] = body
            while len(final.final_updates) > RETAINED_PER_SESSION:
                final.final_updates.popitem(last=False)
        self.send("statement_update", body)

    def session_ended(self, session_id):
        with self.sessions_lock:
            self.sessions.pop(session_id, None)
        os.write(self.wake_write, b"x")

    # ---- main thread ----
    def _send_now(self, frame):
        self.socket.send(frame)

    def _hello(self):
        self._send_now(_frame("hello", {"driver_id": self.driver_id, "secret": self.secret,
                                        "versions": [DRIVER_VERSION], "pid": os.getpid(),
                                        "spark_version": "0.0.0-fake"}, v=HELLO_VERSION))

    def run(self):
        zmq = self.zmq
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.wake_read, zmq.POLLIN)
        self._hello()
        last_received = time.monotonic()
        last_hello = last_sent = time.monotonic()
        while True:
            timeout_ms = max(1, int(self.heartbeat_s * 1000 / 2))
            ready = dict(poller.poll(timeout_ms))
            now = time.monotonic()
            if self.socket in ready:
                while True:
                    try:
                        frame = self.socket.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    last_received = now
                    if self._handle(frame) == "exit":
                        return 1
            if self.wake_read in ready:
                try:
                    os.read(self.wake_read, 65536)
                except BlockingIOError:
                    pass
            # Counted before the outbox is drained: a session thread queues its "dead" before it
            # leaves self.sessions, so when none is left their last messages are in this batch.
            with self.sessions_lock:
                sessions_left = len(self.sessions)
            if self.welcomed:
                with self.outbox_lock:
                    batch, self.outbox = self.outbox, deque()
                for frame in batch:
                    self._send_now(frame)
                    last_sent = now
            if self.shutting_down and sessions_left == 0:
                self._send_now(_frame("driver_state", {"state": "stopping", "sessions": []}))
                return 0
            if now - last_received > self.idle_timeout_s:
                print("fake driver: no word from the server, exiting", file=sys.stderr, flush=True)
                return 0
            if now - last_received > 3 * self.heartbeat_s and now - last_hello > 3 * self.heartbeat_s:
                self.welcomed = False
                self._hello()
                last_hello = now
            if self.welcomed and now - last_sent >= self.heartbeat_s:
                self._send_now(_frame("heartbeat", {}))
                last_sent = now

    def _handle(self, frame):
        try:
            message = json.loads(frame)
            message_type, body = message["type"], message["body"]
        except (ValueError, KeyError, TypeError):
            print(f"fake driver: dropped an undecodable frame {frame[:200]!r}", file=sys.stderr, flush=True)
            return None
        if message_type != "heartbeat":
            record = {"driver": self.driver_id, "received": message}
            if message_type == "add_artifact":
                record["artifact"] = self._describe_artifact(body.get("uri", ""))
            self._record(record)
        if message_type == "welcome":
            self.heartbeat_s = body["heartbeat_ms"] / 1000.0
            self.welcomed = True
            with self.sessions_lock:  # a session being closed is no longer held
                held = sorted(i for i, session in self.sessions.items() if not session.closing)
            self._send_now(_frame("driver_state", {"state": "ready", "app_id": "fake-app-" + self.driver_id,
                                                   "sessions": held}))
        elif message_type == "reject":
            print(f"fake driver: rejected: {body.get('reason')}", file=sys.stderr, flush=True)
            return "exit"
        elif message_type == "error":
            if body.get("code") == "not_authenticated":
                self.welcomed = False
                self._hello()
        elif message_type == "open_session":
            with self.sessions_lock:
                session = self.sessions.get(body["session_id"])
                if session is None:
                    self.sessions[body["session_id"]] = _Session(self, body["session_id"])
            state = "busy" if session is not None and session.running is not None else "idle"
            self.send("session_state", {"session_id": body["session_id"], "state": state})
        elif message_type == "execute":
            session = self._session(body["session_id"])
            if session is not None:
                session.execute(body["statement_id"], body["code"])
        elif message_type == "cancel_statement":
            session = self._session(body["session_id"])
            if session is not None:
                session.cancel(body["statement_id"])
        elif message_type == "close_session":
            session = self._session(body["session_id"])
            if session is not None:
                session.close()
            else:
                self.send("session_state", {"session_id": body["session_id"], "state": "dead"})
        elif message_type == "shutdown":
            self.shutting_down = True
            with self.sessions_lock:
                sessions = list(self.sessions.values())
            for session in sessions:
                session.close()
        elif message_type == "complete":
            code = body["code"][:body["cursor"]]
            word = code.split()[-1] if code.split() and not code.endswith(" ") else ""
            self.send("completion", {"session_id": body["session_id"], "request_id": body["request_id"],
                                     "candidates": [c for c in COMMANDS if word and c.startswith(word)]})
        elif message_type == "add_artifact":
            answer = {"session_id": body["session_id"], "request_id": body["request_id"]}
            if body["uri"].startswith("file:") and not os.path.exists(self._file_path(body["uri"])):
                answer["error"] = f"java.io.FileNotFoundException: {body['uri']}"
            self.send("artifact_added", answer)
        elif message_type == "start_job":
            key = (body["session_id"], body["job_id"])
            if key not in self.job_updates:  # else re-sent after a reconnect: the same answer again
                self.job_updates[key] = {"session_id": key[0], "job_id": key[1], "state": "failed",
                                         "progress": 0.0, "started": 0, "completed": _now_ms(),
                                         "error": "the fake driver runs no jobs"}
                while len(self.job_updates) > RETAINED_PER_SESSION:
                    self.job_updates.popitem(last=False)
            self.send("job_update", self.job_updates[key])
        return None

    def _session(self, session_id):
        with self.sessions_lock:
            session = self.sessions.get(session_id)
        if session is None:
            self.send("error", {"code": "unknown_session", "message": f"no session {session_id} on this driver"})
        return session

    @staticmethod
    def _file_path(uri):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)

    def _describe_artifact(self, uri):
        if not uri.startswith("file:"):
            return None
        try:
            with open(self._file_path(uri), "rb") as f:
                data = f.read()
        except OSError as e:
            return {"error": str(e)}
        return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _parse_duration_s(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix) and text[:-len(suffix)].isdigit():
            return int(text[:-len(suffix)]) * units[suffix]
    return float(text)


def main(argv):
    # spark-submit's own arguments come first; only the agent's (after the jar) matter here.
    wanted = {"--trace-dir": None, "--server": None, "--driver-id": None, "--secret-file": None,
              "--idle-timeout": "10m"}
    for i, arg in enumerate(argv[:-1]):
        if arg in wanted:
            wanted[arg] = argv[i + 1]
    missing = [k for k, v in wanted.items() if v is None]
    if missing:
        print(f"fake driver: missing arguments {missing}", file=sys.stderr, flush=True)
        return 2
    with open(wanted["--secret-file"]) as f:
        secret = f.read().strip()
    os.remove(wanted["--secret-file"])
    trace_path = os.path.join(wanted["--trace-dir"], wanted["--driver-id"] + ".jsonl")
    driver = FakeDriver(wanted["--server"], wanted["--driver-id"], secret,
                        _parse_duration_s(wanted["--idle-timeout"]), trace_path)
    try:
        return driver.run()
    finally:
        driver.socket.close()  # with its linger: the last frames still go out
        driver.context.term()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
