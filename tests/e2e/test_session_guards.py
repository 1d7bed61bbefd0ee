"""One session's code must not end the SparkContext or the worker its driver's sessions share:
spark.stop() and sys.exit() in Python are refused, a Python worker that dies anyway is replaced,
and a statement that stops the context from JVM code says so. Real Spark drivers."""
import signal
import uuid

import pytest

from hearth_harness import (command_line, driver_processes, error_output as error, ok_text as text,
                            scoped_session, wait_until)

CONF = {"spark.ui.enabled": "false"}
SHARED = "the SparkContext is shared by this driver's sessions; delete the session to end it"


@pytest.fixture(scope="module")
def session(hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-guard-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle()
        yield s


def get_statement(session, statement_id):
    return session.server.get(f"/sessions/{session.id}/statements/{statement_id}").json()


def worker_processes(session):
    """The session's Python worker (hearth_worker.py) under its driver, while it lives."""
    return [p for p in driver_processes(session.name) if "hearth_worker.py" in command_line(p)]


def test_spark_stop_prints_a_notice_and_spark_keeps_working(session):
    assert text(session.run("spark.stop()")) == "Hearth: spark.stop() ignored \u2014 " + SHARED
    assert text(session.run("sc.stop()")) == "Hearth: sc.stop() ignored \u2014 " + SHARED
    other_spellings = text(session.run(
        "from pyspark import SparkContext\n"
        "from pyspark.sql import SparkSession\n"
        "spark.sparkContext.stop()\n"
        "SparkSession.builder.getOrCreate().stop()\n"
        "SparkContext.getOrCreate().stop()\n"
        "with spark:\n"
        "    pass"))
    assert other_spellings.splitlines() == [
        "Hearth: sc.stop() ignored \u2014 " + SHARED,
        "Hearth: spark.stop() ignored \u2014 " + SHARED,
        "Hearth: sc.stop() ignored \u2014 " + SHARED,
        "Hearth: spark.stop() ignored \u2014 " + SHARED,
    ]
    assert text(session.run("spark.range(10).count()")) == "10"
    assert text(session.run("sc.parallelize(range(5)).sum()")) == "10"
    assert session.state() == "idle"


def test_sys_exit_is_an_error_and_the_namespace_survives(session):
    text(session.run("kept = 'still here'"))
    out = error(session.run("import sys\nsys.exit(3)"))
    assert (out["ename"], out["evalue"]) == ("SystemExit", "3")
    assert out["traceback"][-2:] == [
        "SystemExit: 3\n",
        "Hearth: SystemExit ignored \u2014 the Python worker of this session keeps running, and its"
        " variables are kept\n"]
    for code, evalue in (("exit()", "None"), ("quit(0)", "0"), ("raise SystemExit('bye')", "bye")):
        out = error(session.run(code))
        assert (out["ename"], out["evalue"]) == ("SystemExit", evalue), code
    assert text(session.run("kept")) == "'still here'"
    # exit() and quit() close sys.stdin before they raise; the next statement has it again.
    assert text(session.run("sys.stdin.closed")) == "False"
    assert text(session.run("spark.range(3).count()")) == "3"


def test_os_exit_ends_the_statement_with_worker_died_and_a_new_worker_runs_the_next(session):
    text(session.run("lost = 'gone with the worker'"))
    out = error(session.run("import os\nos._exit(1)"))
    assert out["ename"] == "WorkerDied"
    assert out["evalue"].startswith("the Python worker of this session exited with code 1; its Python"
                                    " variables are lost"), out["evalue"]
    assert session.state() == "idle"
    # A fresh worker and namespace; the session's SparkSession is still there.
    assert error(session.run("lost"))["ename"] == "NameError"
    assert text(session.run("spark.range(10).count()")) == "10"


def test_a_worker_killed_mid_statement_is_reported_and_replaced(session):
    text(session.run("lost = 1"))
    st = session.submit("import time\ntime.sleep(600)")
    wait_until(lambda: get_statement(session, st["id"])["state"] == "running", 60,
               "the statement to run")
    worker = wait_until(lambda: worker_processes(session), 30, "the session's Python worker")
    assert len(worker) == 1, worker
    worker[0].send_signal(signal.SIGKILL)
    out = error(session.wait_statement(st["id"], timeout=60))
    assert out["ename"] == "WorkerDied"
    assert "was killed by signal 9 (SIGKILL)" in out["evalue"], out["evalue"]
    assert "The next statement starts a new worker." in out["evalue"]
    assert error(session.run("lost"))["ename"] == "NameError"
    assert text(session.run("spark.range(4).count()")) == "4"
    new_worker = worker_processes(session)
    assert len(new_worker) == 1 and new_worker[0].pid != worker[0].pid


def test_a_worker_crash_shows_its_python_stack_and_the_next_statement_works(session):
    out = error(session.run("import ctypes\nctypes.string_at(0)"))
    assert out["ename"] == "WorkerDied"
    assert "was killed by signal 11 (SIGSEGV)" in out["evalue"], out["evalue"]
    # faulthandler's report, from the worker's stderr.
    assert any("Segmentation fault" in line for line in out["traceback"]), out["traceback"]
    assert text(session.run("spark.range(2).count()")) == "2"


def test_a_statement_that_stops_the_context_from_scala_says_so(hearth):
    # Scala runs in the driver JVM, where spark.stop() cannot be refused: the statement's output
    # says what happened. Its own session: no other test can use that driver afterwards.
    with scoped_session(hearth, {"kind": "spark", "name": f"e2e-stop-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle()
        assert "3" in text(s.run("1 + 2"))
        out = error(s.run("spark.stop()"))
        assert out["ename"] == "SparkContextStopped"
        assert "no session of this driver can run Spark jobs any more" in out["evalue"]
        # A driver without a SparkContext is useless to every session: it ends, and says why.
        wait_until(lambda: s.state() == "dead", 60, "the session of the stopped driver to end")
        log = hearth.get(f"/sessions/{s.id}/log", params={"size": -1}).json()["log"]
        assert any("the SparkContext was stopped by user code" in line for line in log)
