"""Cancel, progress, completion, Scala and mixed kinds on one session, with a real Spark driver."""
import uuid

import pytest

from hearth_harness import ok_text as text, scoped_session, wait_until

CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"}


@pytest.fixture(scope="module")
def session(hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-ctl-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle()
        yield s


def get_statement(session, statement_id):
    return session.server.get(f"/sessions/{session.id}/statements/{statement_id}").json()


def wait_running(session, statement_id):
    wait_until(lambda: get_statement(session, statement_id)["state"] == "running", 60,
               f"statement {statement_id} to run")


def cancel(session, statement_id):
    r = session.server.post(f"/sessions/{session.id}/statements/{statement_id}/cancel", json={})
    assert r.status_code == 200 and r.json() == {"msg": "canceled"}


def test_cancel_interrupts_running_python_and_keeps_the_namespace(session):
    text(session.run("kept = 'still here'"))
    st = session.submit("import time\ntime.sleep(600)")
    wait_running(session, st["id"])
    cancel(session, st["id"])
    assert get_statement(session, st["id"])["state"] in ("cancelling", "cancelled")
    done = session.wait_statement(st["id"], timeout=60)
    assert done["state"] == "cancelled"
    assert text(session.run("kept")) == "'still here'"
    assert session.state() == "idle"


def test_a_cancel_while_the_python_worker_starts_is_not_lost(session):
    # Ending the worker makes the next statement start a new one (about a second): the cancel
    # sent as soon as that statement runs arrives while the worker is still starting.
    assert "WorkerDied" in str(session.run("import os\nos._exit(3)")["output"])
    st = session.submit("import time\ntime.sleep(600)")
    wait_running(session, st["id"])
    cancel(session, st["id"])
    done = session.wait_statement(st["id"], timeout=60)
    assert done["state"] == "cancelled", done
    assert done["output"]["ename"] == "KeyboardInterrupt", done
    assert text(session.run("1+1")) == "2"


def test_cancel_stops_a_long_spark_job(session):
    st = session.submit("spark.range(0, 10**13, 1, 4).selectExpr('sum(id)').collect()")
    wait_running(session, st["id"])
    cancel(session, st["id"])
    assert session.wait_statement(st["id"], timeout=60)["state"] == "cancelled"
    assert text(session.run("1+1")) == "2"


def test_a_queued_statement_is_cancelled_at_once(session):
    blocker = session.submit("import time\ntime.sleep(600)")
    queued = session.submit("queued_ran = True")
    cancel(session, queued["id"])
    assert get_statement(session, queued["id"])["state"] == "cancelled"
    cancel(session, blocker["id"])
    session.wait_statement(blocker["id"], timeout=60)
    assert "NameError" in str(session.run("queued_ran")["output"])


def test_progress_moves_between_zero_and_one_during_a_multi_stage_job(session):
    # Two stages (a shuffle), each task slow enough for progress to be seen mid-way.
    st = session.submit("import time\n"
                        "sc.parallelize(range(16), 16)"
                        ".map(lambda x: (time.sleep(0.3), (x % 2, x))[1])"
                        ".reduceByKey(lambda a, b: a + b, 4)"
                        ".map(lambda kv: (time.sleep(0.3), kv)[1]).collect()")
    seen = set()

    def finished():
        s = get_statement(session, st["id"])
        seen.add(s["progress"])
        return s["state"] == "available"

    wait_until(finished, 120, "the job", interval=0.05)
    assert any(0 < p < 1 for p in seen), sorted(seen)
    assert get_statement(session, st["id"])["progress"] == 1.0


def test_python_completion_uses_the_session_namespace(session):
    text(session.run("hearth_completion_probe = 1"))
    r = session.server.post(f"/sessions/{session.id}/completion",
                            json={"code": "spark.ran", "kind": "pyspark", "cursor": 9})
    assert r.status_code == 200
    assert "range" in r.json()["candidates"]
    r = session.server.post(f"/sessions/{session.id}/completion",
                            json={"code": "hearth_completion_pr", "kind": "pyspark"})
    assert "hearth_completion_probe" in r.json()["candidates"]


def test_scala_statements_keep_definitions_and_report_errors(session):
    assert "3" in text(session.run("1 + 2", kind="spark"))
    text(session.run("val answer = 41", kind="spark"))
    assert "42" in text(session.run("answer + 1", kind="spark"))
    assert "10100" in text(session.run("sc.parallelize(1 to 100).map(_ * 2).sum()", kind="spark"))
    compile_error = session.run("val broken: Int = \"text\"", kind="spark")["output"]
    assert compile_error["status"] == "error" and compile_error["ename"] == "Error"
    runtime_error = session.run('throw new RuntimeException("boom")', kind="spark")["output"]
    assert runtime_error["status"] == "error" and "boom" in runtime_error["evalue"]


def test_scala_sleep_is_interrupted_by_cancel(session):
    st = session.submit("Thread.sleep(600000)", kind="spark")
    wait_running(session, st["id"])
    cancel(session, st["id"])
    assert session.wait_statement(st["id"], timeout=60)["state"] == "cancelled"
    assert "2" in text(session.run("1 + 1", kind="spark"))


def test_kinds_share_the_session_spark_session(session):
    text(session.run("spark.range(5).createOrReplaceTempView('shared_view')"))
    table = session.run("select count(*) as n from shared_view", kind="sql")
    assert table["output"]["data"]["application/json"]["data"] == [[5]]
    assert "5" in text(session.run('spark.table("shared_view").count()', kind="spark"))
