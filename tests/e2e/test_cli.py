"""The `hearth` command-line client (clients/cli) against a real hearth-server with real Spark
drivers, over the server's ZeroMQ client channel: statements with text, tables and errors,
sessions, logs, jars and jobs, drivers, cancelling from another client and with Ctrl-C, exit
codes, and what the CLI draws only on a terminal.

Every CLI run is a subprocess with its output piped (so no table is truncated and no progress
bar is drawn), except the one test that gives it a pseudo-terminal on purpose.
"""
import json
import os
import pty
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from hearth_harness import ok_text as text, scoped_session, wait_until
from job_sources import JOBS_SOURCES, build_job_jar

HEARTH_CLI = os.environ.get("HEARTH_CLI", "")
CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"}
FINAL_JOB_STATES = {"succeeded", "failed", "cancelled"}


class Cli:
    """Runs the hearth binary against the test server. The environment is cleaned of what could
    point it elsewhere: ctest's HEARTH_SERVER is the server *binary*, and a developer's
    ~/.config/hearth/cli.conf must not count."""

    def __init__(self, server, config_home):
        self.server = server
        self.address = server.client_address
        self.env = {k: v for k, v in os.environ.items() if k not in ("HEARTH_SERVER", "HEARTH_USER")}
        self.env["XDG_CONFIG_HOME"] = str(config_home)
        self.env.pop("COLUMNS", None)

    def argv(self, args):
        return [HEARTH_CLI, "--server", self.address, *args]

    def run(self, *args, timeout=300, input=None, env=None):
        """The finished process (stdout and stderr as text); never raises for an exit code."""
        started = time.monotonic()
        done = subprocess.run(self.argv(args), capture_output=True, text=True, timeout=timeout,
                              input=input, env=env or self.env)
        print(f"$ hearth {' '.join(args)}  -> {done.returncode} in {time.monotonic() - started:.2f}s\n"
              f"--- stdout ---\n{done.stdout}--- stderr ---\n{done.stderr}")
        return done

    def ok(self, *args, **kw):
        done = self.run(*args, **kw)
        assert done.returncode == 0, done
        return done

    def start(self, *args, **kw):
        """A running CLI process with piped output."""
        return subprocess.Popen(self.argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env, **kw)


class LineReader:
    """Collects a process's output lines on a thread, so a test can wait for one."""

    def __init__(self, stream):
        self.lines = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def join(self, timeout=30):
        self._thread.join(timeout)


def finish(process, timeout=120):
    """Waits for a CLI process; kills it (and fails) when it does not end."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the hearth CLI did not end within {timeout}s\n{out}\n{err}")
    print(f"--- exit {process.returncode} ---\n--- stdout ---\n{out}--- stderr ---\n{err}")
    return process.returncode, out, err


def table_rows(stdout):
    """A piped table: the header's column names and each row's cells (no value has a space)."""
    lines = stdout.splitlines()
    assert lines, "no table printed"
    return lines[0].split(), [line.split() for line in lines[1:]]


@pytest.fixture(scope="module")
def cli(hearth, tmp_path_factory):
    assert HEARTH_CLI and os.path.isfile(HEARTH_CLI), "HEARTH_CLI is not set (run the tests through ctest)"
    assert hearth.client_address, "the server printed no client channel address:\n" + hearth.output()
    return Cli(hearth, tmp_path_factory.mktemp("cli-config"))


@pytest.fixture(scope="module")
def session(hearth):
    """The module's pyspark session (its own driver), idle, its Python worker started."""
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-cli-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle(240)
        # The first statement starts the Python worker. The cancel tests interrupt their statement
        # as soon as it runs; cancelling a session's very first statement while its worker is
        # still starting left it `cancelling` for good in one run (a driver-side matter, not the
        # CLI's), so that must not depend on which test runs first.
        assert text(s.run("1 + 1")) == "2"
        yield s


def statements_with_code(session, code):
    listed = session.server.get(f"/sessions/{session.id}/statements").json()["statements"]
    return [s for s in listed if s["code"] == code]


def wait_statement_running(session, code):
    """The statement with this code once the server has it running."""
    def running():
        found = [s for s in statements_with_code(session, code) if s["state"] == "running"]
        return found[-1] if found else None
    return wait_until(running, 60, f"the statement {code!r} to run", interval=0.1)


# ---- statements ------------------------------------------------------------------------------

def test_exec_prints_what_python_printed_and_the_last_value(cli, session):
    done = cli.ok("exec", "--session", str(session.id), "print('hello from hearth')\n40 + 2")
    assert done.stdout.splitlines() == ["hello from hearth", "42"]
    # Piped stderr: no progress bar, no status line, nothing at all.
    assert done.stderr == ""


def test_exec_reads_code_from_a_file_and_from_stdin(cli, session, tmp_path):
    script = tmp_path / "script.py"
    script.write_text("values = [3, 4]\nprint(sum(values))\n")
    assert cli.ok("exec", "--session", str(session.id), "-f", str(script)).stdout.splitlines() == ["7"]
    piped = cli.ok("exec", "--session", str(session.id), "-f", "-", input="print(values[0] * 10)\n")
    assert piped.stdout.splitlines() == ["30"]


def test_exec_without_a_session_runs_in_a_new_one_and_deletes_it(cli, hearth):
    before = {s["id"] for s in hearth.get("/sessions").json()["sessions"]}
    done = cli.ok("exec", "--kind", "pyspark", "spark.range(5).count()", timeout=400)
    assert done.stdout == "5\n"
    after = {s["id"] for s in hearth.get("/sessions").json()["sessions"]}
    # The session it made is gone again once the command has returned.
    assert after == before


def test_sql_prints_an_aligned_table_with_numbers_right_aligned_and_nulls(cli, session):
    done = cli.ok("sql", "--session", str(session.id),
                  "select id, id * 250 as scaled, cast(null as string) as missing, 'x' as s from range(3)")
    assert done.stdout == ("id  scaled  missing  s\n"
                           " 0       0  null     x\n"
                           " 1     250  null     x\n"
                           " 2     500  null     x\n")
    assert done.stderr == ""


def test_json_prints_the_statement_as_the_server_has_it(cli, session):
    done = cli.ok("--json", "sql", "--session", str(session.id), "select 1 as one, 'a' as letter")
    statement = json.loads(done.stdout)
    assert statement["state"] == "available"
    output = statement["output"]
    assert output["status"] == "ok"
    assert output["data"]["application/json"]["data"] == [[1, "a"]]
    fields = output["data"]["application/json"]["schema"]["fields"]
    assert [f["name"] for f in fields] == ["one", "letter"]


def test_a_python_error_exits_1_with_the_error_on_stderr(cli, session):
    done = cli.run("exec", "--session", str(session.id), "1 / 0")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines()[0] == "ZeroDivisionError: division by zero"
    assert "Traceback" in done.stderr or "line 1" in done.stderr  # the traceback follows
    # The session goes on.
    assert text(session.run("1 + 1")) == "2"


def test_a_sql_error_exits_1_naming_the_table(cli, session):
    done = cli.run("sql", "--session", str(session.id), "select * from no_such_table_for_the_cli")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "no_such_table_for_the_cli" in done.stderr


def test_a_statement_cancelled_by_another_client_ends_the_cli_with_an_error(cli, session):
    code = f"import time\ntime.sleep(600)  # {uuid.uuid4().hex}"
    process = cli.start("exec", "--session", str(session.id), code)
    try:
        running = wait_statement_running(session, code)
        r = session.server.post(f"/sessions/{session.id}/statements/{running['id']}/cancel", json={})
        assert r.status_code == 200, r.text
        started = time.monotonic()
        code_, out, err = finish(process, timeout=90)
        print(f"timing: cancel to CLI exit {time.monotonic() - started:.2f}s")
    finally:
        if process.poll() is None:
            process.kill()
    assert code_ == 1
    assert out == ""
    assert f"statement {running['id']} was cancelled" in err
    assert session.wait_statement(running["id"], timeout=60)["state"] == "cancelled"
    assert text(session.run("1 + 1")) == "2"


def test_ctrl_c_cancels_the_running_statement(cli, session):
    code = f"import time\ntime.sleep(600)  # {uuid.uuid4().hex}"
    process = cli.start("exec", "--session", str(session.id), code)
    try:
        running = wait_statement_running(session, code)
        process.send_signal(signal.SIGINT)
        code_, out, err = finish(process, timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert code_ == 130
    assert "cancelling the statement" in err
    assert session.wait_statement(running["id"], timeout=60)["state"] == "cancelled"
    assert session.state() == "idle"


def test_a_progress_bar_is_drawn_only_when_stderr_is_a_terminal(cli, session):
    code = ("import time\n"
            "sc.parallelize(range(8), 8).map(lambda x: (time.sleep(0.5), x)[1]).count()")
    master, replica = pty.openpty()
    try:
        process = subprocess.Popen(cli.argv(["exec", "--session", str(session.id), code]),
                                   stdout=subprocess.PIPE, stderr=replica, text=True, env=cli.env)
        os.close(replica)
        replica = None
        terminal = []

        def drain():
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO once the process has closed its end
                    return
                if not chunk:
                    return
                terminal.append(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        out, _ = process.communicate(timeout=120)
        reader.join(10)
    finally:
        if replica is not None:
            os.close(replica)
        os.close(master)
    drawn = b"".join(terminal).decode("utf-8", "replace")
    print(repr(drawn))
    assert process.returncode == 0
    assert out == "8\n"
    assert "statement" in drawn and "%" in drawn and "\r" in drawn, drawn
    assert drawn.endswith("\x1b[K"), drawn  # the bar is erased before the result prints


# ---- sessions and logs -----------------------------------------------------------------------

def test_session_create_lists_logs_and_rm(cli, hearth):
    name = f"e2e-cli-made-{uuid.uuid4().hex[:8]}"
    created = cli.ok("session", "create", "--kind", "pyspark", "--name", name,
                     "--conf", "spark.ui.enabled=false", timeout=400)
    session_id = int(created.stdout.strip())
    try:
        # --wait is the default: it returned once the session was idle.
        info = hearth.get(f"/sessions/{session_id}").json()
        assert info["state"] == "idle" and info["name"] == name and info["kind"] == "pyspark", info
        assert info["conf"] == {"spark.ui.enabled": "false"}, info

        header, rows = table_rows(cli.ok("sessions").stdout)
        assert header == ["id", "name", "kind", "state", "owner", "appId"]
        mine = [row for row in rows if row[0] == str(session_id)]
        assert mine == [[str(session_id), name, "pyspark", "idle", "-", info["appId"]]], rows

        listed = json.loads(cli.ok("--json", "sessions").stdout)
        assert [s for s in listed["sessions"] if s["id"] == session_id][0]["name"] == name

        # The last three lines of the driver's log, as REST has them (read afterwards: the driver
        # may have printed more meanwhile, so they are found in the whole log).
        last = cli.ok("logs", "-n", "3", str(session_id)).stdout.splitlines()
        assert len(last) == 3, last
        full = hearth.get(f"/sessions/{session_id}/log", params={"size": -1}).json()["log"]
        assert any(full[i:i + 3] == last for i in range(len(full))), (last, full[-10:])
    finally:
        removed = cli.run("session", "rm", str(session_id), timeout=180)
    assert removed.returncode == 0
    assert hearth.get(f"/sessions/{session_id}").status_code == 404
    # Removing it again is a server error: exit 3, the server's message.
    again = cli.run("session", "rm", str(session_id))
    assert again.returncode == 3
    assert f"Session '{session_id}' not found." in again.stderr


def test_logs_follow_prints_new_driver_lines_until_the_session_ends(cli, hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-cli-logs-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle(240)
        follower = cli.start("logs", "-f", str(s.id))
        reader = LineReader(follower.stdout)
        try:
            marker = f"cli-log-marker-{uuid.uuid4().hex}"
            # The Python worker's own stderr (not the statement's captured one) is the driver log.
            text(s.run(f"import os\nos.write(2, b'{marker}\\n')\n'written'"))
            wait_until(lambda: marker in reader.lines, 60, "the marker line in `hearth logs -f`")
            assert reader.lines.count(marker) == 1  # neither lost nor doubled around the subscribe
            # Stopping the driver ends the session (dead): the follower ends by itself.
            r = hearth.post(f"/sessions/{s.id}/stop")
            assert r.status_code == 204, r.text
            code, _, err = finish(follower, timeout=120)
        finally:
            if follower.poll() is None:
                follower.kill()
        reader.join()
        assert code == 0
        assert f"session {s.id} is dead" in err


# ---- jars and jobs ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jobs_jar(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli-jobs-jar")
    return build_job_jar(str(directory), "e2ejobs", JOBS_SOURCES, f"cli-jobs-{uuid.uuid4().hex[:8]}.jar")


@pytest.fixture(scope="module")
def job_session(cli, session, jobs_jar):
    """The module's session with the job classes uploaded by `hearth jar add` (a local file)."""
    cli.ok("jar", "add", "--session", str(session.id), jobs_jar)
    return session


def test_job_start_wait_prints_the_id_then_the_result(cli, job_session):
    s = job_session
    done = cli.ok("job", "start", "--session", str(s.id), "--class", "e2ejobs.Count", "--conf", "label=x",
                  "--wait", "--", "a", "b c")
    lines = done.stdout.splitlines()
    assert len(lines) == 2, lines
    job_id = int(lines[0])
    assert json.loads(lines[1]) == {"count": 100, "sum": 10, "args": ["a", "b c"], "conf": {"label": "x"},
                                    "jobId": job_id, "sessionId": s.id}

    status = cli.ok("job", "status", "--session", str(s.id), str(job_id))
    fields = dict(line.split(None, 1) for line in status.stdout.splitlines()[1:])
    assert fields["state"] == "succeeded" and fields["status"] == "SUCCESS", fields
    assert fields["class"] == "e2ejobs.Count" and fields["progress"] == "100%", fields
    assert json.loads(fields["result"])["jobId"] == job_id
    as_json = json.loads(cli.ok("--json", "job", "status", "--session", str(s.id), str(job_id)).stdout)
    assert as_json == s.server.get(f"/sessions/{s.id}/jobs/{job_id}").json()


def test_job_start_without_wait_prints_only_the_id(cli, job_session):
    s = job_session
    done = cli.ok("job", "start", "--session", str(s.id), "--class", "e2ejobs.MakeView", "--",
                  uuid.uuid4().hex[:8])
    job_id = int(done.stdout.strip())
    job = wait_until(lambda: (lambda j: j if j["state"] in FINAL_JOB_STATES else None)(
        s.server.get(f"/sessions/{s.id}/jobs/{job_id}").json()), 120, f"job {job_id} to finish")
    assert job["state"] == "succeeded", job


def test_a_failing_job_exits_1_with_its_error_and_traceback(cli, job_session):
    s = job_session
    done = cli.run("job", "start", "--session", str(s.id), "--class", "e2ejobs.Fails", "--wait")
    assert done.returncode == 1
    assert int(done.stdout.strip()) >= 0  # the id, printed before waiting
    assert done.stderr.splitlines()[0] == "java.lang.IllegalStateException: boom"
    assert "e2ejobs.Fails.call(Fails.java:" in done.stderr


def test_job_kill_cancels_a_running_job(cli, job_session):
    s = job_session
    job_id = int(cli.ok("job", "start", "--session", str(s.id), "--class", "e2ejobs.Watcher").stdout)
    wait_until(lambda: s.server.get(f"/sessions/{s.id}/jobs/{job_id}").json()["state"] == "running", 60,
               f"job {job_id} to run")
    killed = cli.ok("job", "kill", "--session", str(s.id), str(job_id))
    assert killed.stdout.strip() in (f"job {job_id} cancelling", f"job {job_id} cancelled")
    job = wait_until(lambda: (lambda j: j if j["state"] in FINAL_JOB_STATES else None)(
        s.server.get(f"/sessions/{s.id}/jobs/{job_id}").json()), 60, f"job {job_id} to end")
    assert job["state"] == "cancelled", job


def test_an_unknown_session_is_a_server_error(cli):
    done = cli.run("job", "status", "--session", "987654", "0")
    assert done.returncode == 3
    assert "987654" in done.stderr


# ---- drivers ---------------------------------------------------------------------------------

def test_drivers_lists_the_sessions_driver(cli, session):
    driver = session.server.get(f"/sessions/{session.id}/driver").json()
    header, rows = table_rows(cli.ok("drivers").stdout)
    assert header == ["id", "state", "user", "shareLevel", "pooled", "sessions", "appId"]
    mine = [row for row in rows if row[0] == driver["id"]]
    assert len(mine) == 1, rows
    row = mine[0]
    assert row[1] == driver["state"] or row[1] in ("idle", "busy"), row
    assert row[3] == "session" and row[4] == "no", row
    assert str(session.id) in row[5].split(","), row
    assert row[6] == driver["appId"], row
    listed = json.loads(cli.ok("--json", "drivers").stdout)
    assert driver["id"] in [d["id"] for d in listed["drivers"]]


# ---- where the server address comes from, and exit codes without a server -------------------

def test_the_server_address_comes_from_the_environment_or_a_config_file(cli, tmp_path):
    env = dict(cli.env, HEARTH_SERVER=cli.address)
    done = subprocess.run([HEARTH_CLI, "sessions"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done
    assert done.stdout.splitlines()[0].split() == ["id", "name", "kind", "state", "owner", "appId"]

    config = tmp_path / "cli.conf"
    config.write_text(f"# test\nserver = {cli.address}\n")
    done = subprocess.run([HEARTH_CLI, "--config", str(config), "--json", "drivers"], capture_output=True,
                          text=True, timeout=120, env=cli.env)
    assert done.returncode == 0, done
    assert "drivers" in json.loads(done.stdout)


def test_no_server_is_exit_3_and_bad_usage_exit_2(cli):
    # A port that is bound but never listens: connections are refused for as long as we hold it.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        done = subprocess.run([HEARTH_CLI, "--server", f"127.0.0.1:{port}", "--timeout", "2s", "sessions"],
                              capture_output=True, text=True, timeout=60, env=cli.env)
    assert done.returncode == 3, done
    assert done.stderr.startswith("hearth: "), done
    usage = subprocess.run([HEARTH_CLI, "exec"], capture_output=True, text=True, timeout=60, env=cli.env)
    assert usage.returncode == 2 and "no code" in usage.stderr, usage
