"""Hearth's own REST resources (not Livy's), without Spark work: shareLevel in session requests,
drivers (/drivers, /sessions/{id}/driver) and jobs (/sessions/{id}/jobs).

Drivers here are real spark-submit processes, but nothing waits for them: sessions are used
while their drivers are still starting (jobs stay queued), or their drivers are stopped.
"""
import os
import uuid

import pytest

from hearth_harness import scoped_session, wait_until

SLOW_START_CONF = {"spark.ui.enabled": "false"}
DRIVER_KEYS = ["id", "state", "user", "shareLevel", "pooled", "profile", "sessions", "load", "appId",
               "sparkUiUrl", "pid", "created", "lastUsed"]
PROFILE_KEYS = ["driverMemory", "driverCores", "executorMemory", "executorCores", "numExecutors",
                "queue", "conf"]
LOAD_KEYS = ["sessions", "busySessions", "runningStatements", "runningJobs"]
JOB_KEYS = ["id", "sessionId", "className", "jar", "args", "conf", "state", "progress", "created",
            "started", "completed", "result", "error", "traceback"]


def new_name(prefix="hr"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_msg(response, status, text=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["msg"] and body["msg"], body
    if text is not None:
        assert body["msg"] == text
    return body["msg"]


@pytest.fixture
def session(hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": new_name(), "conf": SLOW_START_CONF}) as s:
        yield s


def drivers_of(hearth, session_id):
    listed = hearth.get("/drivers")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert list(body) == ["total", "drivers"] and body["total"] == len(body["drivers"])
    return [d for d in body["drivers"] if session_id in d["sessions"]]


def job_count(hearth, session_id):
    return hearth.get(f"/sessions/{session_id}/jobs").json()["total"]


def ended_job(hearth, session_id, job_id, timeout=30):
    """The job once it has left `queued`; fails after `timeout` s."""
    def ended():
        job = hearth.get(f"/sessions/{session_id}/jobs/{job_id}").json()
        return job if job["state"] != "queued" else None
    return wait_until(ended, timeout, f"job {job_id} of session {session_id} to end")


# ---- shareLevel ------------------------------------------------------------------------------

@pytest.mark.parametrize("level, fragment", [
    ("group", 'shareLevel must be "session" or "user", not "group"'),
    ("User", 'shareLevel must be "session" or "user", not "User"'),
    (1, "field 'shareLevel' must be a string"),
])
def test_a_bad_share_level_is_400_and_creates_no_session(hearth, level, fragment):
    name = new_name("bad-share")
    before = hearth.get("/sessions").json()["total"]
    r = hearth.post("/sessions", json={"kind": "pyspark", "name": name, "shareLevel": level})
    assert_msg(r, 400, fragment)
    assert hearth.get(f"/sessions/{name}").status_code == 404
    assert hearth.get("/sessions").json()["total"] == before


# ---- drivers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("share_level", ["absent", None, "session"])
def test_a_new_session_gets_a_starting_driver_of_its_own(hearth, share_level):
    body = {"kind": "pyspark", "name": new_name(), "conf": SLOW_START_CONF}
    if share_level != "absent":
        body["shareLevel"] = share_level
    with scoped_session(hearth, body) as s:
        found = drivers_of(hearth, s.id)
        assert len(found) == 1, found
        driver = found[0]
        assert list(driver) == DRIVER_KEYS
        assert driver["state"] in ("starting", "idle"), driver
        assert driver["sessions"] == [s.id]
        assert driver["shareLevel"] == "session" and driver["pooled"] is False and driver["user"] is None
        assert list(driver["profile"]) == PROFILE_KEYS
        assert driver["profile"]["conf"] == SLOW_START_CONF
        assert driver["profile"]["driverMemory"] is None and driver["profile"]["numExecutors"] is None
        assert list(driver["load"]) == LOAD_KEYS and driver["load"]["sessions"] == 1
        assert driver["pid"] > 0 and driver["created"] > 0

        for path in (f"/sessions/{s.id}/driver", f"/sessions/{s.name}/driver", f"/drivers/{driver['id']}"):
            r = hearth.get(path)
            assert r.status_code == 200, (path, r.text)
            same = r.json()
            assert (same["id"], same["pid"], same["sessions"], same["shareLevel"]) == \
                (driver["id"], driver["pid"], [s.id], "session"), path


def test_an_unknown_driver_is_404(hearth):
    assert_msg(hearth.get("/drivers/no-such-driver"), 404, "Driver 'no-such-driver' not found.")
    assert_msg(hearth.delete("/drivers/no-such-driver"), 404, "Driver 'no-such-driver' not found.")
    assert_msg(hearth.get("/sessions/987654/driver"), 404, "Session '987654' not found.")
    assert_msg(hearth.delete("/sessions/987654/driver"), 404, "Session '987654' not found.")


def test_sessions_of_one_user_share_a_driver_and_deleting_it_ends_them(hearth):
    # A profile of its own, so that no shared driver of another test is taken.
    body = {"kind": "pyspark", "shareLevel": "user",
            "conf": dict(SLOW_START_CONF, **{"spark.hearth.test.profile": uuid.uuid4().hex})}
    with scoped_session(hearth, body) as one, scoped_session(hearth, body) as two:
        driver = hearth.get(f"/sessions/{one.id}/driver").json()
        assert driver["shareLevel"] == "user" and driver["sessions"] == [one.id, two.id]
        assert driver["load"]["sessions"] == 2
        assert hearth.get(f"/sessions/{two.id}/driver").json()["id"] == driver["id"]
        job = hearth.post(f"/sessions/{one.id}/jobs", json={"className": "com.example.Main"}).json()
        assert job["state"] == "queued"

        deleted = hearth.delete(f"/drivers/{driver['id']}")
        assert deleted.status_code == 200 and deleted.json() == {"msg": "deleted"}
        assert_msg(hearth.get(f"/drivers/{driver['id']}"), 404, f"Driver '{driver['id']}' not found.")
        assert drivers_of(hearth, one.id) == [] and drivers_of(hearth, two.id) == []
        # Both sessions end with their driver, still listed; the queued job is cancelled (the
        # driver was stopped on request; a driver that dies fails its jobs).
        for s in (one, two):
            wait_until(lambda: s.state() == "dead", 30, f"session {s.id} to be dead")
            assert_msg(hearth.get(f"/sessions/{s.id}/driver"), 404,
                       f"The driver of session '{s.id}' is gone.")
        ended = ended_job(hearth, one.id, 0)
        assert ended["state"] == "cancelled" and ended["error"] is None, ended


# ---- jobs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, fragment", [
    ("{}", "field 'className' is required"),
    ('{"args": ["x"]}', "field 'className' is required"),
    ('{"className": ""}', "field 'className' must be a non-empty string"),
    ('{"className": null}', "field 'className' must be a non-empty string"),
    ('{"className": 5}', "field 'className' must be a non-empty string"),
    ('{"className": "a.B", "args": "x"}', "field 'args' must be an array of strings"),
    ('{"className": "a.B", "args": [1]}', "field 'args' must be an array of strings"),
    ('{"className": "a.B", "jar": 5}', "field 'jar' must be a string"),
    ('{"className": "a.B", "conf": []}', "field 'conf' must be an object"),
    ('{"className": "a.B", "conf": {"k": {"n": 1}}}', "conf value of 'k' must be a string, number or boolean"),
    ('{"className": "a.B", "colour": "blue"}', 'Unrecognized field "colour" in the job request'),
    ('{"className": "a.B"', None),
    ("[1]", "request body must be a JSON object"),
])
def test_bad_job_requests_are_400_and_start_nothing(hearth, session, body, fragment):
    r = hearth.post(f"/sessions/{session.id}/jobs", data=body, headers={"Content-Type": "application/json"})
    assert_msg(r, 400, fragment)
    assert job_count(hearth, session.id) == 0


def test_a_job_queued_while_the_driver_starts_is_listed_and_cancels_at_once(hearth, session):
    sid = session.id
    r = hearth.post(f"/sessions/{sid}/jobs",
                    json={"className": "com.example.Main", "args": ["in.txt", "out"],
                          "conf": {"minCount": 2, "verbose": True, "label": "x"}})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/sessions/{sid}/jobs/0"
    job = r.json()
    assert list(job) == JOB_KEYS
    assert job["id"] == 0 and job["sessionId"] == sid and job["className"] == "com.example.Main"
    assert job["jar"] is None and job["args"] == ["in.txt", "out"]
    assert job["conf"] == {"label": "x", "minCount": "2", "verbose": "true"}
    assert job["state"] == "queued" and job["progress"] == 0
    assert job["created"] > 0 and job["started"] == 0 and job["completed"] == 0
    assert job["result"] is None and job["error"] is None and job["traceback"] == []

    listed = hearth.get(f"/sessions/{sid}/jobs").json()
    assert listed == {"total": 1, "jobs": [job]}
    assert hearth.get(f"/sessions/{sid}/jobs/0").json() == job
    assert hearth.get(f"/sessions/{session.name}/jobs/0").json() == job
    assert hearth.get(f"/sessions/{sid}/driver").json()["load"]["runningJobs"] == 1

    # Never handed to the driver (it is still starting): cancelled at once.
    cancelled = hearth.post(f"/sessions/{sid}/jobs/0/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text
    after = cancelled.json()
    assert after["state"] == "cancelled" and after["completed"] >= job["created"]
    assert {k: v for k, v in after.items() if k not in ("state", "completed")} == \
        {k: v for k, v in job.items() if k not in ("state", "completed")}
    # It stays cancelled: read again, listed, and a second cancel leaves it as it is.
    assert hearth.get(f"/sessions/{sid}/jobs/0").json() == after
    assert hearth.get(f"/sessions/{sid}/jobs").json() == {"total": 1, "jobs": [after]}
    assert hearth.post(f"/sessions/{sid}/jobs/0/cancel", json={}).json() == after
    assert hearth.get(f"/sessions/{sid}/driver").json()["load"]["runningJobs"] == 0

    second = hearth.post(f"/sessions/{sid}/jobs", json={"className": "com.example.Other"})
    assert second.status_code == 201 and second.json()["id"] == 1
    assert [j["id"] for j in hearth.get(f"/sessions/{sid}/jobs").json()["jobs"]] == [0, 1]


def test_an_unknown_job_is_404(hearth, session):
    sid = session.id
    assert_msg(hearth.get(f"/sessions/{sid}/jobs/0"), 404, "Job '0' not found.")
    assert_msg(hearth.get(f"/sessions/{sid}/jobs/4242"), 404, "Job '4242' not found.")
    assert_msg(hearth.get(f"/sessions/{sid}/jobs/x"), 404, "Job 'x' not found.")
    assert_msg(hearth.post(f"/sessions/{sid}/jobs/4242/cancel", json={}), 404, "Job '4242' not found.")
    assert hearth.get(f"/sessions/{sid}/jobs").json() == {"total": 0, "jobs": []}


@pytest.mark.parametrize("session_ref", ["987654", "no-such-session"])
def test_jobs_of_an_unknown_session_are_404(hearth, session_ref):
    text = f"Session '{session_ref}' not found."
    assert_msg(hearth.get(f"/sessions/{session_ref}/jobs"), 404, text)
    assert_msg(hearth.post(f"/sessions/{session_ref}/jobs", json={"className": "a.B"}), 404, text)
    assert_msg(hearth.get(f"/sessions/{session_ref}/jobs/0"), 404, text)
    assert_msg(hearth.post(f"/sessions/{session_ref}/jobs/0/cancel", json={}), 404, text)


def test_a_job_jar_must_be_remote_or_below_the_whitelist(hearth, session):
    sid = session.id
    for uri in ("file:///etc/passwd", "/etc/passwd",
                "file://" + os.path.join(hearth.shared_dir, "..", "escape.jar")):
        r = hearth.post(f"/sessions/{sid}/jobs", json={"className": "a.B", "jar": uri})
        assert_msg(r, 400, f"Local path {uri} cannot be added to user sessions.")
    assert_msg(hearth.post(f"/sessions/{sid}/jobs", json={"className": "a.B", "jar": "lib/a.jar"}), 400,
               "Path lib/a.jar must be absolute.")
    assert job_count(hearth, sid) == 0

    shared = os.path.join(hearth.shared_dir, "jobs.jar")
    local = hearth.post(f"/sessions/{sid}/jobs", json={"className": "a.B", "jar": shared})
    assert local.status_code == 201, local.text
    assert local.json()["jar"] == "file://" + os.path.realpath(shared)
    remote = hearth.post(f"/sessions/{sid}/jobs", json={"className": "a.B", "jar": "hdfs:///jobs/a.jar"})
    assert remote.status_code == 201, remote.text
    assert remote.json()["jar"] == "hdfs:///jobs/a.jar"
    assert job_count(hearth, sid) == 2


def test_a_stopped_session_refuses_jobs_and_its_queued_job_is_cancelled(hearth, session):
    sid = session.id
    queued = hearth.post(f"/sessions/{sid}/jobs", json={"className": "a.B"})
    assert queued.status_code == 201 and queued.json()["state"] == "queued"
    assert hearth.post(f"/sessions/{sid}/stop").status_code == 204
    assert_msg(hearth.post(f"/sessions/{sid}/jobs", json={"className": "a.B"}), 400,
               "requirement failed: Session isn't active.")
    wait_until(lambda: hearth.get(f"/sessions/{sid}/driver").status_code == 404, 30,
               "the stopped session's driver to be gone")
    assert_msg(hearth.get(f"/sessions/{sid}/driver"), 404, f"The driver of session '{sid}' is gone.")
    ended = ended_job(hearth, sid, 0)
    assert ended["state"] == "cancelled", ended
    assert hearth.get(f"/sessions/{sid}/jobs").json()["jobs"] == [ended]
