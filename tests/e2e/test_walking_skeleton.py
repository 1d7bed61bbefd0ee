"""A statement from REST through a real Spark driver and back, with state in Redis.

One pyspark session (one real driver) is shared by the tests of this module; tests that need
their own driver create it with scoped_session.
"""
import hashlib
import json
import os
import re
import uuid

import psutil
import pytest

from hearth_harness import command_line, driver_processes, ok_text, process_name, scoped_session, wait_until

FAST_CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}


@pytest.fixture(scope="module")
def pyspark_session(hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-{uuid.uuid4().hex[:8]}", "conf": FAST_CONF}) as session:
        session.wait_idle()
        yield session


def test_one_plus_one(pyspark_session):
    assert ok_text(pyspark_session.run("1+1")) == "2"


def test_quickstart_dataframe_sum(pyspark_session):
    statement = pyspark_session.run('spark.range(1000).selectExpr("sum(id)").collect()[0][0]')
    assert statement["output"] == {"status": "ok", "execution_count": statement["id"],
                                   "data": {"text/plain": "499500"}}
    assert statement["progress"] == 1.0
    assert 0 < statement["started"] <= statement["completed"]
    assert set(statement) == {"id", "code", "state", "output", "progress", "started", "completed"}


def test_dataframe_computation_with_shuffle(pyspark_session):
    code = ("df = spark.range(100).selectExpr('id % 3 as k', 'id as v')\n"
            "print(sorted((r.k, r.v) for r in df.groupBy('k').sum('v').withColumnRenamed('sum(v)', 'v').collect()))")
    assert ok_text(pyspark_session.run(code)) == "[(0, 1683), (1, 1617), (2, 1650)]"


def test_namespace_is_kept_between_statements(pyspark_session):
    assert ok_text(pyspark_session.run("x = 41")) == ""
    assert ok_text(pyspark_session.run("x + 1")) == "42"
    assert ok_text(pyspark_session.run("def twice(v):\n    return 2 * v\n\ntwice(x)")) == "82"


def test_name_error_gives_livy_error_output(pyspark_session):
    statement = pyspark_session.run("undefined_name_42 + 1")
    assert statement["state"] == "available"
    output = statement["output"]
    assert list(output) == ["status", "execution_count", "ename", "evalue", "traceback"]
    assert output["status"] == "error"
    assert output["ename"] == "NameError"
    assert "undefined_name_42" in output["evalue"]
    assert output["traceback"][-1].startswith("NameError")
    # The session is still usable after an error.
    assert ok_text(pyspark_session.run("'still alive'")) == "'still alive'"


def test_sql_statement_gives_livy_table(pyspark_session):
    statement = pyspark_session.run("select 1 as a, 'x' as b union all select 2, null", kind="sql")
    assert statement["state"] == "available", statement
    data = statement["output"]["data"]["application/json"]
    assert [f["name"] for f in data["schema"]["fields"]] == ["a", "b"]
    assert data["schema"]["type"] == "struct"
    assert sorted(data["data"], key=lambda row: row[0]) == [[1, "x"], [2, None]]


def test_sql_error_is_an_error_output(pyspark_session):
    statement = pyspark_session.run("select * from no_such_table_here", kind="sql")
    output = statement["output"]
    assert output["status"] == "error"
    assert "no_such_table_here" in output["evalue"]


def test_session_listing_state_and_log(hearth, pyspark_session):
    info = hearth.get(f"/sessions/{pyspark_session.id}").json()
    assert info["state"] == "idle"
    assert info["appId"]
    assert hearth.get(f"/sessions/{pyspark_session.id}/state").json() == {"id": pyspark_session.id, "state": "idle"}
    listed = hearth.get("/sessions").json()
    assert pyspark_session.id in [s["id"] for s in listed["sessions"]]
    log = hearth.get(f"/sessions/{pyspark_session.id}/log", params={"size": -1}).json()
    assert set(log) == {"id", "from", "total", "log"}
    assert log["total"] == len(log["log"]) > 0
    statements = hearth.get(f"/sessions/{pyspark_session.id}/statements").json()
    assert statements["total_statements"] == len(statements["statements"]) > 0
    assert [s["id"] for s in statements["statements"]] == list(range(len(statements["statements"])))


def test_statements_submitted_while_starting_wait_then_run_in_order_and_delete_ends_the_driver(hearth):
    name = f"e2e-early-{uuid.uuid4().hex[:8]}"
    with scoped_session(hearth, {"kind": "pyspark", "name": name, "conf": FAST_CONF}) as session:
        assert session.state() == "starting"
        first = session.submit("counter = 1")
        second = session.submit("counter += 1\ncounter")
        assert first["state"] == "waiting" and second["state"] == "waiting"
        assert (first["id"], second["id"]) == (0, 1)
        assert ok_text(session.wait_statement(second["id"], timeout=180)) == "2"
        session.wait_idle()

        processes = wait_until(lambda: driver_processes(name), 30, "the driver process to be visible")
        python_workers = [p for p in processes if process_name(p).startswith("python")]
        assert python_workers, "the pyspark statement should have started a Python worker"
        response = session.delete()
        assert response.status_code == 200 and response.json() == {"msg": "deleted"}
        # DELETE returns after the driver has stopped: no driver JVM or Python worker is left.
        gone, alive = psutil.wait_procs(processes, timeout=5)
        assert not alive, f"left behind: {[p.pid for p in alive]}"
        assert hearth.get(f"/sessions/{session.id}").status_code == 404


def test_the_driver_secret_reaches_neither_user_code_nor_spark_conf_nor_the_command_line(
        hearth, redis_server, pyspark_session):
    record = json.loads(redis_server.get(f"hearth:v1:session:{pyspark_session.id}"))
    driver = json.loads(redis_server.get(f"hearth:v1:driver:{record['driver_id']}"))
    # Redis keeps only the secret's SHA-256, so whoever reads it cannot pose as the driver.
    assert "secret" not in driver
    digest = driver["secret_sha256"]
    assert re.fullmatch("[0-9a-f]{64}", digest)

    def holds_the_secret(text):
        # The secret is 64 hex digits: try every such window of every run of hex digits.
        return any(hashlib.sha256(run[i:i + 64].encode()).hexdigest() == digest
                   for run in re.findall("[0-9a-f]{64,}", text) for i in range(len(run) - 63))

    seen_by_user_code = ok_text(pyspark_session.run(
        "import os\n"
        "' '.join([repr(dict(os.environ)), repr(sc.getConf().getAll()),"
        " repr(spark.conf.getAll if hasattr(spark.conf, 'getAll') else '')])"))
    assert "spark.app.id" in seen_by_user_code  # the probe did read the conf
    assert not holds_the_secret(seen_by_user_code)
    for process in driver_processes(pyspark_session.name):
        assert not holds_the_secret(command_line(process))
    # The agent deleted its one-time secret file.
    assert os.listdir(os.path.join(hearth.data_dir, "secrets")) == []
