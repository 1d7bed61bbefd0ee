"""Session lifecycle as Livy users know it: idle timeout, ttl, heartbeat timeout, retention of
finished sessions, and the cap on sessions starting at once. A server with a fast lifecycle
check is started for this module; sessions are judged while their drivers start."""
import time

import pytest

from hearth_harness import HearthServer, wait_until

CONF = {"spark.ui.enabled": "false"}


@pytest.fixture(scope="module")
def fast_gc(redis_server):
    server = HearthServer(redis_server.url, "--gc-interval", "100ms", "--session-state-retain", "1s",
                          "--max-starting-sessions", "3")
    yield server
    assert server.stop() == 0, server.output()


def listed(server, sid):
    # GET /sessions (the list) counts as no request about any one session.
    return sid in [s["id"] for s in server.get("/sessions").json()["sessions"]]


def create(server, **fields):
    r = server.post("/sessions", json={"kind": "pyspark", "conf": CONF, **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_idle_timeout_deletes_and_get_polling_does_not_keep_a_session_alive(fast_gc):
    sid = create(fast_gc, idleTimeout="1s")
    # Polling the session (as a notebook's status bar does) is not activity.
    wait_until(lambda: fast_gc.get(f"/sessions/{sid}").status_code == 404, 60, "the idle session to go")
    assert not listed(fast_gc, sid)


def test_statements_are_activity(fast_gc):
    sid = create(fast_gc, idleTimeout="2s")
    try:
        # Keep submitting (and cancelling) for well over the idle timeout: the session must stay.
        end = time.monotonic() + 5
        while time.monotonic() < end:
            st = fast_gc.post(f"/sessions/{sid}/statements", json={"code": "1"})
            assert st.status_code == 201, st.text
            fast_gc.post(f"/sessions/{sid}/statements/{st.json()['id']}/cancel", json={})
        assert listed(fast_gc, sid)
    finally:
        fast_gc.delete(f"/sessions/{sid}")


def test_ttl_deletes_a_session_however_busy(fast_gc):
    sid = create(fast_gc, ttl="1s")
    wait_until(lambda: not listed(fast_gc, sid), 60, "the session past its ttl to go")


def test_heartbeat_timeout_deletes_a_session_nobody_asks_about(fast_gc):
    sid = create(fast_gc, heartbeatTimeoutInSecond=1)
    wait_until(lambda: not listed(fast_gc, sid), 60, "the session without heartbeats to go")


def test_finished_sessions_are_retained_then_deleted(fast_gc):
    sid = create(fast_gc)
    assert fast_gc.post(f"/sessions/{sid}/stop").status_code == 204
    assert fast_gc.get(f"/sessions/{sid}/state").json()["state"] == "dead"
    wait_until(lambda: not listed(fast_gc, sid), 60, "the dead session to be dropped")


def test_too_many_sessions_starting_at_once_are_refused(fast_gc):
    ids = [create(fast_gc) for _ in range(3)]
    try:
        r = fast_gc.post("/sessions", json={"kind": "pyspark", "conf": CONF})
        assert r.status_code == 400
        assert r.json() == {"msg": "Rejected, too many sessions are being created!"}
    finally:
        for sid in ids:
            fast_gc.delete(f"/sessions/{sid}")


@pytest.mark.parametrize("field", ["ttl", "idleTimeout"])
def test_bad_durations_are_rejected(fast_gc, field):
    r = fast_gc.post("/sessions", json={"kind": "pyspark", field: "soon"})
    assert r.status_code == 400
    assert r.json()["msg"].startswith("Rejected, Reason: invalid duration 'soon'")
