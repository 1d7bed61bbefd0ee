"""REST behaviour a client sees without running any Spark code: shapes, status codes, errors."""
import re

import pytest

SESSION_KEYS = {"id", "name", "appId", "owner", "proxyUser", "state", "kind", "appInfo", "log", "ttl",
                "idleTimeout", "driverMemory", "driverCores", "executorMemory", "executorCores", "conf",
                "archives", "files", "heartbeatTimeoutInSecond", "jars", "numExecutors", "pyFiles", "queue"}
LIVY_STATES = {"not_started", "starting", "recovering", "idle", "running", "busy", "shutting_down",
               "error", "dead", "killed", "success"}


def assert_msg(response, status, text=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"msg"}, body
    assert body["msg"]
    if text is not None:
        assert text in body["msg"], body["msg"]
    return body["msg"]


def test_version_has_livy_shape_and_a_version_pylivy_accepts(hearth):
    r = hearth.get("/version")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"version", "user", "revision", "branch", "date", "url"}
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(\S*)$", body["version"])
    assert m, body["version"]
    # pylivy treats servers below 0.5.0 as legacy Livy.
    assert (int(m.group(1)), int(m.group(2))) >= (0, 5)


@pytest.mark.parametrize("body, fragment", [
    ('{"kind": "pyspark"', "malformed JSON"),
    ("[1, 2]", "JSON object"),
    ('{"kind": 5}', "'kind'"),
    ('{"kind": "cobol"}', "Invalid kind: cobol"),
    ('{"kind": "pyspark", "colour": "blue"}', 'Unrecognized field "colour"'),
    ('{"driverCores": "two"}', "'driverCores'"),
    ('{"jars": "a.jar"}', "'jars'"),
    ('{"conf": {"spark.x": {"nested": 1}}}', "spark.x"),
    ('{"name": "123"}', "Invalid session name: 123"),
])
def test_bad_session_requests_are_answered_400_and_create_nothing(hearth, body, fragment):
    before = hearth.get("/sessions").json()["total"]
    r = hearth.post("/sessions", data=body, headers={"Content-Type": "application/json"})
    assert_msg(r, 400, fragment)
    assert hearth.get("/sessions").json()["total"] == before


@pytest.mark.parametrize("path", ["/sessions/987654", "/sessions/987654/state", "/sessions/987654/log",
                                  "/sessions/987654/statements", "/sessions/987654/statements/0",
                                  "/sessions/not-a-number"])
def test_unknown_session_is_404_with_livy_message(hearth, path):
    msg = assert_msg(hearth.get(path), 404)
    assert re.fullmatch(r"Session '[^']+' not found\.", msg), msg


def test_unknown_session_on_post_and_delete_is_404(hearth):
    assert_msg(hearth.post("/sessions/987654/statements", json={"code": "1"}), 404, "Session '987654' not found.")
    assert_msg(hearth.delete("/sessions/987654"), 404, "Session '987654' not found.")


def test_unknown_route_is_404_json(hearth):
    assert_msg(hearth.get("/no/such/thing"), 404)


def test_oversized_body_is_refused(hearth):
    r = hearth.post("/sessions", data="{" + " " * (17 << 20) + "}")
    assert r.status_code == 413


def test_bad_paging_parameter_is_400(hearth):
    assert_msg(hearth.get("/sessions", params={"from": "x"}), 400, 'For input string: "x"')


def test_create_answers_201_with_location_and_livy_keys_then_delete(hearth):
    r = hearth.post("/sessions", json={"kind": "pyspark", "name": "component-create", "driverMemory": "512m",
                                       "conf": {"spark.ui.enabled": False, "spark.sql.shuffle.partitions": 4}})
    assert r.status_code == 201, r.text
    session = r.json()
    try:
        assert r.headers["Location"] == f"/sessions/{session['id']}"
        assert set(session) == SESSION_KEYS
        assert set(session["appInfo"]) == {"driverLogUrl", "sparkUiUrl", "executorLogUrls"}
        assert session["state"] in LIVY_STATES
        assert session["kind"] == "pyspark"
        assert session["name"] == "component-create"
        assert session["driverMemory"] == "512m"
        assert session["conf"] == {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"}
        listed = hearth.get("/sessions").json()
        assert set(listed) == {"from", "total", "sessions"}
        assert session["id"] in [s["id"] for s in listed["sessions"]]
        state = hearth.get(f"/sessions/{session['id']}/state").json()
        assert set(state) == {"id", "state"} and state["state"] in LIVY_STATES

        # Bad statements against an existing session: 400 (404 for an unknown statement).
        sid = session["id"]
        assert_msg(hearth.post(f"/sessions/{sid}/statements", data="{nope"), 400, "malformed JSON")
        assert_msg(hearth.post(f"/sessions/{sid}/statements", json={"kind": "sql"}), 400, "'code' is required")
        assert_msg(hearth.post(f"/sessions/{sid}/statements", json={"code": "1", "kind": "cobol"}), 400,
                   "Invalid kind: cobol")
        assert_msg(hearth.post(f"/sessions/{sid}/statements", json={"code": 1}), 400, "'code'")
        assert_msg(hearth.get(f"/sessions/{sid}/statements/4242"), 404, "Statement not found")
        assert hearth.get(f"/sessions/{sid}/statements").json() == {"total_statements": 0, "statements": []}
    finally:
        d = hearth.delete(f"/sessions/{session['id']}")
    assert d.status_code == 200 and d.json() == {"msg": "deleted"}
    assert_msg(hearth.get(f"/sessions/{session['id']}"), 404)


def test_shared_session_requires_statement_kind(hearth):
    r = hearth.post("/sessions", json={"name": "component-shared", "conf": {"spark.ui.enabled": "false"}})
    assert r.status_code == 201
    sid = r.json()["id"]
    try:
        assert r.json()["kind"] == "shared"
        assert_msg(hearth.post(f"/sessions/{sid}/statements", json={"code": "1"}), 400,
                   "Code type should be specified if session kind is shared")
    finally:
        assert hearth.delete(f"/sessions/{sid}").status_code == 200
