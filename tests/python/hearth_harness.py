"""Shared test harness: a real redis-server and a real hearth-server, started once per suite.

Used by tests/component (REST without Spark work) and tests/e2e (real Spark drivers). Nothing
here sleeps for a fixed time: every wait polls with a deadline.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager

import psutil
import requests

HEARTH_SERVER = os.environ.get("HEARTH_SERVER", "")
HEARTH_AGENT_JAR = os.environ.get("HEARTH_AGENT_JAR", "")


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns a truthy value; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # poll step of a deadline-bounded wait, not a fixed delay


class Redis:
    """One redis-server on a unix socket in a private temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hearth-test-redis-")
        self.socket = os.path.join(self.dir, "redis.sock")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._answers, 20, "redis-server to answer PING")

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited during start-up")
        out = subprocess.run(["redis-cli", "-s", self.socket, "PING"], capture_output=True, text=True)
        return out.stdout.strip() == "PONG"

    @property
    def url(self):
        return "unix://" + self.socket

    def get(self, key):
        """The value of a key (as a user with redis-cli would see it), or None."""
        out = subprocess.run(["redis-cli", "-s", self.socket, "--raw", "GET", key],
                             capture_output=True, text=True, check=True)
        value = out.stdout.rstrip("\n")
        return value or None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        shutil.rmtree(self.dir, ignore_errors=True)


def require_server_binary():
    if not HEARTH_SERVER:
        raise AssertionError("HEARTH_SERVER is not set (run the tests through ctest)")


def server_command(redis_url, data_dir, shared_dir, *extra_args):
    """The hearth-server command line of the tests: free ports, the given dirs, then extra_args
    (a later flag overrides an earlier one)."""
    require_server_binary()
    args = [HEARTH_SERVER, "--port", "0", "--client-port", "0", "--data-dir", data_dir,
            "--driver-idle-timeout", "3m", "--driver-stop-timeout", "20s",
            # A smaller body limit than the default (100 MiB), so tests can cross it cheaply.
            "--max-request-mib", "16", "--local-dir-whitelist", shared_dir]
    if redis_url:
        args += ["--redis", redis_url]
    if HEARTH_AGENT_JAR:
        args += ["--agent-jar", HEARTH_AGENT_JAR]
    return args + list(extra_args)


def run_server_until_exit(redis_url, *extra_args, timeout=30):
    """Runs hearth-server as HearthServer would, for a server that is expected to end by itself
    (a start-up error). Returns (exit code, stdout and stderr merged); fails if it still runs
    after `timeout` s (it is killed then)."""
    require_server_binary()
    data_dir = tempfile.mkdtemp(prefix="hearth-test-data-")
    shared_dir = tempfile.mkdtemp(prefix="hearth-test-shared-")
    try:
        done = subprocess.run(server_command(redis_url, data_dir, shared_dir, *extra_args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
        return done.returncode, done.stdout
    except subprocess.TimeoutExpired as e:
        output = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError(f"hearth-server still ran after {timeout}s:\n{output}") from None
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(shared_dir, ignore_errors=True)


class HearthServer:
    """A hearth-server process on a free port, with its output collected for diagnostics."""

    def __init__(self, redis_url, *extra_args, keep_drivers=False, data_dir=None, shared_dir=None):
        """keep_drivers: leave drivers running at SIGTERM (the server's default, for restart
        tests); otherwise the suite's servers stop their drivers, so none outlives its suite.
        data_dir/shared_dir: take over another server's directories (a restart)."""
        require_server_binary()
        # stop() removes the directories unless this is set (a restart on them follows).
        self.keep_dirs = False
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="hearth-test-data-")
        # Files tests hand to add-jar/add-pyfile/add-file by file: URI must live here.
        self.shared_dir = shared_dir or tempfile.mkdtemp(prefix="hearth-test-shared-")
        args = server_command(redis_url, self.data_dir, self.shared_dir,
                              "--stop-drivers-on-shutdown", "false" if keep_drivers else "true",
                              *extra_args)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._port = None
        # The client channel (ZeroMQ) as "127.0.0.1:PORT", from the listening line.
        self.client_address = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout=60):
            self.stop()
            raise AssertionError("hearth-server did not start:\n" + self.output())
        if self._port is None:
            raise AssertionError("hearth-server exited during start-up:\n" + self.output())
        self.url = f"http://127.0.0.1:{self._port}"

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m and self._port is None:
                clients = re.search(r"clients: tcp://([^,)\s]+)", line)
                self.client_address = clients.group(1) if clients else None
                self._port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def output(self):
        return "\n".join(self.lines[-200:])

    def stop(self):
        """Stops the server with SIGTERM and returns its exit code (None if it had to be killed).
        A sanitizer build reports leaks and errors through the exit code."""
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            code = self.proc.returncode
        self._reader.join(timeout=10)
        if not self.keep_dirs:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.rmtree(self.shared_dir, ignore_errors=True)
        return code

    def kill(self):
        """SIGKILL, as a crash: nothing is stopped or cleaned up; the directories stay."""
        self.keep_dirs = True
        self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=10)

    @property
    def port(self):
        return self._port

    @property
    def pid(self):
        return self.proc.pid

    # REST helpers: thin wrappers that keep tests readable.
    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=60, **kw)

    def post(self, path, json=None, data=None, **kw):
        return requests.post(self.url + path, json=json, data=data, timeout=60, **kw)

    def delete(self, path, **kw):
        return requests.delete(self.url + path, timeout=120, **kw)


def driver_processes(app_name):
    """The driver JVM started for a session with this (unique) name, and all its living
    descendants. Zombies are left out: pyspark's daemon reaps its short-lived workers a moment
    after they exit."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "io.hearth.driver.HearthDriver" in cmdline and app_name in cmdline:
            found.append(proc)
            try:
                found.extend(proc.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
    return [p for p in found if process_state(p) not in (None, psutil.STATUS_ZOMBIE)]


def process_state(process):
    """psutil's status of a process, or None once it is gone."""
    try:
        return process.status()
    except psutil.NoSuchProcess:
        return None


def process_name(process):
    """A process's name; "" once it is gone."""
    try:
        return process.name()
    except psutil.NoSuchProcess:
        return ""


def command_line(process):
    """A process's command line as one string; "" once it is gone or a zombie."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def ok_data(statement):
    """The data of a statement that finished with Livy's ok output; fails the test otherwise."""
    assert statement["state"] == "available", statement
    output = statement["output"]
    assert output["status"] == "ok", output
    assert list(output) == ["status", "execution_count", "data"], output
    assert output["execution_count"] == statement["id"]
    return output["data"]


def ok_text(statement):
    return ok_data(statement)["text/plain"]


def error_output(statement):
    """Livy's error output of a finished statement (key order included); fails otherwise."""
    assert statement["state"] == "available", statement
    output = statement["output"]
    assert output["status"] == "error", output
    assert list(output) == ["status", "execution_count", "ename", "evalue", "traceback"], output
    return output


class SessionHandle:
    """A session created by a test; describes itself when a test using it fails."""

    def __init__(self, server, body):
        self.server = server
        response = server.post("/sessions", json=body)
        assert response.status_code == 201, response.text
        self.info = response.json()
        self.id = self.info["id"]
        self.name = body.get("name")

    def state(self):
        return self.server.get(f"/sessions/{self.id}/state").json()["state"]

    def wait_idle(self, timeout=180):
        def idle():
            state = self.state()
            if state in ("error", "dead", "killed", "success"):
                raise AssertionError(f"session {self.id} ended in state {state}\n" + self.describe())
            return state == "idle"
        wait_until(idle, timeout, f"session {self.id} to become idle", interval=0.1)

    def submit(self, code, kind=None):
        body = {"code": code}
        if kind:
            body["kind"] = kind
        response = self.server.post(f"/sessions/{self.id}/statements", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def wait_statement(self, statement_id, timeout=120):
        def done():
            st = self.server.get(f"/sessions/{self.id}/statements/{statement_id}").json()
            return st if st["state"] in ("available", "cancelled") else None
        return wait_until(done, timeout, f"statement {statement_id} of session {self.id}")

    def run(self, code, kind=None, timeout=120):
        statement = self.submit(code, kind)
        return self.wait_statement(statement["id"], timeout)

    def describe(self):
        try:
            info = self.server.get(f"/sessions/{self.id}").json()
            log = self.server.get(f"/sessions/{self.id}/log", params={"size": -1}).json().get("log", [])
        except Exception as e:  # the description must never hide the original failure
            return f"(cannot describe session {self.id}: {e})"
        return (f"session {self.id} state={info.get('state')}\n--- driver log ---\n" + "\n".join(log) +
                "\n--- server output ---\n" + self.server.output())

    def delete(self):
        return self.server.delete(f"/sessions/{self.id}")


@contextmanager
def scoped_session(server, body):
    """Creates a session, prints its state and driver log if the block fails, always deletes it."""
    session = SessionHandle(server, body)
    try:
        yield session
    except BaseException:
        print(session.describe())
        raise
    finally:
        session.delete()
