"""Livy endpoints that need no running Spark code: names, stop, connect, interrupt, cancel of
waiting statements, statement paging and retention, completion, CSRF, unsupported endpoints.

Sessions here are created and then used while their drivers are still starting (statements
wait), or stopped; nothing depends on Spark finishing a statement.
"""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from hearth_harness import HearthServer, wait_until

SLOW_START_CONF = {"spark.ui.enabled": "false"}


def new_name(prefix="c"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def session(hearth):
    r = hearth.post("/sessions", json={"kind": "pyspark", "name": new_name(), "conf": SLOW_START_CONF})
    assert r.status_code == 201, r.text
    info = r.json()
    yield info
    hearth.delete(f"/sessions/{info['id']}")


def test_sessions_are_found_by_name_and_names_are_unique(hearth, session):
    by_name = hearth.get(f"/sessions/{session['name']}")
    assert by_name.status_code == 200
    assert by_name.json()["id"] == session["id"]
    assert hearth.get(f"/sessions/{session['name']}/state").json()["id"] == session["id"]
    dup = hearth.post("/sessions", json={"kind": "pyspark", "name": session["name"]})
    assert dup.status_code == 400
    assert dup.json()["msg"] == (f"Rejected, Reason: Duplicate session name: {session['name']} "
                                 f"for session {session['id']}")
    missing = hearth.get("/sessions/no-such-name")
    assert missing.status_code == 404 and missing.json() == {"msg": "Session 'no-such-name' not found."}


def test_blacklisted_conf_is_rejected(hearth):
    r = hearth.post("/sessions", json={"kind": "pyspark", "conf": {"spark.master": "yarn", "spark.x": "1"}})
    assert r.status_code == 400
    assert r.json()["msg"] == ("Rejected, Reason: Blacklisted configuration values in session config: "
                               "spark.master")


def test_connect_returns_the_session(hearth, session):
    r = hearth.post(f"/sessions/{session['id']}/connect", json={})
    assert r.status_code == 200
    assert r.json()["id"] == session["id"] and r.json()["name"] == session["name"]


def test_waiting_statements_cancel_at_once_and_list_with_paging_and_order(hearth, session):
    sid = session["id"]
    ids = [hearth.post(f"/sessions/{sid}/statements", json={"code": f"{i} + 1"}).json()["id"] for i in range(4)]
    assert ids == [0, 1, 2, 3]
    r = hearth.post(f"/sessions/{sid}/statements/1/cancel", json={})
    assert r.status_code == 200 and r.json() == {"msg": "canceled"}
    cancelled = hearth.get(f"/sessions/{sid}/statements/1").json()
    assert cancelled["state"] == "cancelled" and cancelled["output"] is None
    assert cancelled["progress"] == 1.0

    page = hearth.get(f"/sessions/{sid}/statements", params={"from": 1, "size": 2}).json()
    assert page["total_statements"] == 4
    assert [s["id"] for s in page["statements"]] == [1, 2]
    desc = hearth.get(f"/sessions/{sid}/statements", params={"order": "desc"}).json()
    assert [s["id"] for s in desc["statements"]] == [3, 2, 1, 0]
    assert hearth.get(f"/sessions/{sid}/statements", params={"order": "sideways"}).status_code == 400
    assert hearth.post(f"/sessions/{sid}/statements/99/cancel", json={}).status_code == 404


def test_stop_keeps_the_session_dead_and_its_statements_readable(hearth):
    r = hearth.post("/sessions", json={"kind": "pyspark", "name": new_name("stop"), "conf": SLOW_START_CONF})
    sid = r.json()["id"]
    try:
        hearth.post(f"/sessions/{sid}/statements", json={"code": "1"})
        stopped = hearth.post(f"/sessions/{sid}/stop")
        assert stopped.status_code == 204 and stopped.content == b""
        assert hearth.get(f"/sessions/{sid}/state").json()["state"] == "dead"
        assert sid in [s["id"] for s in hearth.get("/sessions").json()["sessions"]]
        statement = hearth.get(f"/sessions/{sid}/statements/0").json()
        assert statement["state"] in ("available", "cancelled")
        refused = hearth.post(f"/sessions/{sid}/statements", json={"code": "1"})
        assert refused.status_code == 400
        assert refused.json() == {"msg": "requirement failed: Session isn't active."}
        interrupted = hearth.post(f"/sessions/{sid}/interrupt")
        assert interrupted.status_code == 200 and interrupted.json() == {"msg": "interrupted"}
    finally:
        assert hearth.delete(f"/sessions/{sid}").status_code == 200


def test_completion_validates_and_answers_empty_before_the_driver_is_up(hearth, session):
    sid = session["id"]
    r = hearth.post(f"/sessions/{sid}/completion", json={"code": "spark.ran", "kind": "pyspark", "cursor": 9})
    assert r.status_code == 200 and r.json() == {"candidates": []}
    missing_kind = hearth.post(f"/sessions/{sid}/completion", json={"code": "x"})
    assert missing_kind.status_code == 400 and "'kind' is required" in missing_kind.json()["msg"]
    unknown = hearth.post(f"/sessions/{sid}/completion", json={"code": "x", "kind": "pyspark", "extra": 1})
    assert unknown.status_code == 400


# Livy's GET /sessions/{id}/jobs/{jobid} and its cancel answer Hearth's jobs
# (test_hearth_resources.py); Livy's serialized jobs are not run.
@pytest.mark.parametrize("method, path", [
    ("post", "/sessions/{id}/submit-job"), ("post", "/sessions/{id}/run-job"),
    ("get", "/batches"), ("post", "/batches"),
])
def test_endpoints_not_served_yet_answer_a_clear_error(hearth, method, path):
    r = getattr(hearth, method)(path.format(id=0))
    assert r.status_code == 501
    assert "not supported by this Hearth version yet" in r.json()["msg"]


def test_csrf_protection_requires_x_requested_by(redis_server):
    server = HearthServer(redis_server.url, "--csrf-protection", "true")
    try:
        refused = server.post("/sessions", json={"kind": "pyspark"})
        assert refused.status_code == 400
        assert refused.json() == {"msg": "Missing Required Header for CSRF protection."}
        assert server.get("/sessions").status_code == 200  # GET needs no header
        ok = server.post("/sessions", json={"kind": "pyspark", "conf": SLOW_START_CONF},
                         headers={"X-Requested-By": "livy"})
        assert ok.status_code == 201
        assert server.delete(f"/sessions/{ok.json()['id']}", headers={"X-Requested-By": "x"}).status_code == 200
    finally:
        assert server.stop() == 0, server.output()


def test_only_the_last_retained_finished_statements_are_kept(redis_server):
    server = HearthServer(redis_server.url, "--retained-statements", "2")
    try:
        sid = server.post("/sessions", json={"kind": "pyspark", "conf": SLOW_START_CONF}).json()["id"]
        for i in range(3):
            server.post(f"/sessions/{sid}/statements", json={"code": str(i)})
            server.post(f"/sessions/{sid}/statements/{i}/cancel", json={})
        server.post(f"/sessions/{sid}/statements", json={"code": "3"})
        listed = server.get(f"/sessions/{sid}/statements").json()
        assert [s["id"] for s in listed["statements"]] == [2, 3]
        evicted = server.get(f"/sessions/{sid}/statements/0")
        assert evicted.status_code == 404 and evicted.json() == {"msg": "Statement not found"}
        assert server.delete(f"/sessions/{sid}").status_code == 200
    finally:
        assert server.stop() == 0, server.output()


def test_unfinished_statements_are_never_evicted(redis_server):
    server = HearthServer(redis_server.url, "--retained-statements", "2")
    try:
        sid = server.post("/sessions", json={"kind": "pyspark", "conf": SLOW_START_CONF}).json()["id"]
        server.post(f"/sessions/{sid}/statements", json={"code": "0"})  # stays waiting
        for i in (1, 2):
            server.post(f"/sessions/{sid}/statements", json={"code": str(i)})
            server.post(f"/sessions/{sid}/statements/{i}/cancel", json={})
        server.post(f"/sessions/{sid}/statements", json={"code": "3"})
        listed = server.get(f"/sessions/{sid}/statements").json()
        assert [(s["id"], s["state"]) for s in listed["statements"]] == [(0, "waiting"), (3, "waiting")]
        assert server.delete(f"/sessions/{sid}").status_code == 200
    finally:
        assert server.stop() == 0, server.output()


def test_long_poll_returns_when_the_statement_leaves_waiting(hearth, session):
    sid = session["id"]
    hearth.post(f"/sessions/{sid}/statements", json={"code": "1"})
    # The driver is still starting: a short wait ends at its deadline with the statement waiting.
    short = hearth.get(f"/sessions/{sid}/statements/0", params={"wait": 200})
    assert short.status_code == 200 and short.json()["state"] == "waiting"

    with ThreadPoolExecutor(max_workers=1) as pool:
        # Parked until the statement changes (the server caps waits at 60 s).
        parked = pool.submit(hearth.get, f"/sessions/{sid}/statements/0", params={"wait": 600000})
        wait_until(lambda: hearth.post(f"/sessions/{sid}/statements/0/cancel", json={}).status_code == 200,
                   10, "the cancel")
        answer = parked.result(timeout=30)
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    bad = hearth.get(f"/sessions/{sid}/statements/0", params={"wait": "soon"})
    assert bad.status_code == 400


def test_sparkr_sessions_are_refused_where_r_is_missing(hearth):
    # This machine has no R, and the pyspark package carries no SparkR.
    r = hearth.post("/sessions", json={"kind": "sparkr"})
    assert r.status_code == 400
    assert r.json()["msg"].startswith("Rejected, Reason: sparkr sessions need R and SparkR: ")
