"""Sessions sharing one Spark driver (shareLevel "user"): attaching, isolation, parallel jobs,
per-session jars, closing one session, stopping the driver.

The module runs its own hearth-server (and Redis, so its driver listing is its own) with master
local[4], so four one-task jobs have four task slots even on a 2-core machine, and with
--default-share-level user. All anonymous sessions of the default profile share the driver of
the `first` session; the stopping test uses another user's driver, so stopping it leaves the
first one running. Two drivers in all.
"""
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import psutil
import pytest

from driver_support import (build_greeter_jar, driver_gone, driver_jvm, driver_of, get_driver, list_drivers, living,
                            spark_api, spark_time)
from hearth_harness import HearthServer, Redis, error_output, ok_data, ok_text as text, process_state, \
    scoped_session, wait_until

SHARED = {"kind": "pyspark", "shareLevel": "user"}
OTHER_USER = "hearth-e2e-other"
SLEEPY_JOB = "sc.parallelize([0], 1).map(lambda x: __import__('time').sleep(5) or x).collect()"


@pytest.fixture(scope="module")
def server():
    redis = Redis()
    server = HearthServer(redis.url, "--master", "local[4]", "--default-share-level", "user")
    yield server
    code = server.stop()
    redis.stop()
    assert code == 0, f"hearth-server did not stop cleanly (exit code {code}):\n{server.output()}"


def idle_after_post(server, stack, body, timeout=180):
    """A session created in `stack`, once idle, and the seconds from its POST to idle."""
    started = time.monotonic()
    session = stack.enter_context(scoped_session(server, body))
    session.wait_idle(timeout)
    return session, time.monotonic() - started


@pytest.fixture(scope="module")
def first(server):
    """The session that starts the shared driver (a cold start)."""
    with ExitStack() as stack:
        session, seconds = idle_after_post(server, stack, dict(SHARED, name=f"e2e-first-{uuid.uuid4().hex[:8]}"),
                                           timeout=240)
        session.cold_start_s = seconds
        yield session


def scala_value(session, expression):
    """The value of a Scala expression in a session, through the %json magic."""
    return ok_data(session.run(f"%json {expression}", kind="spark"))["application/json"]


def get_statement(session, statement_id):
    return session.server.get(f"/sessions/{session.id}/statements/{statement_id}").json()


def finished(session, statement_id):
    return get_statement(session, statement_id)["state"] in ("available", "cancelled")


def test_user_sessions_attach_to_one_running_driver(server, first):
    with ExitStack() as stack:
        second, second_s = idle_after_post(server, stack, SHARED)
        # No shareLevel: the server's --default-share-level user applies.
        third, third_s = idle_after_post(server, stack, {"kind": "pyspark"})
        print(f"timing: cold start (POST to idle) {first.cold_start_s:.2f}s; "
              f"attach {second_s:.2f}s and {third_s:.2f}s")

        driver = driver_of(first)
        assert driver_of(second)["id"] == driver["id"]
        assert driver_of(third)["id"] == driver["id"]
        assert driver["state"] == "idle" and driver["shareLevel"] == "user" and driver["pooled"] is False
        assert sorted(driver["sessions"]) == sorted([first.id, second.id, third.id])
        assert driver["load"] == {"sessions": 3, "busySessions": 0, "runningStatements": 0, "runningJobs": 0}
        driver_jvm(server, driver["pid"])  # fails unless it is a running driver JVM of this server
        # One Spark application serves all three.
        for session in (first, second, third):
            assert server.get(f"/sessions/{session.id}").json()["appId"] == driver["appId"]

        # The listing shows the same driver, and it is this server's only running one.
        listed = {d["id"]: d for d in list_drivers(server)}
        assert [i for i, d in listed.items() if d["state"] not in ("dead", "error")] == [driver["id"]]
        assert sorted(listed[driver["id"]]["sessions"]) == sorted(driver["sessions"])
        assert listed[driver["id"]]["pid"] == driver["pid"]
        assert listed[driver["id"]]["load"] == driver["load"]


@pytest.mark.parametrize("round_", range(3))
def test_sessions_created_at_once_all_attach_to_the_running_driver(server, first, round_):
    driver = driver_of(first)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=4) as pool:
        sessions = list(pool.map(lambda _: stack.enter_context(scoped_session(server, SHARED)), range(4)))
        for session in sessions:
            session.wait_idle()
        assert {driver_of(s)["id"] for s in sessions} == {driver["id"]}
        assert sorted(get_driver(server, driver["id"])["sessions"]) == sorted([first.id] + [s.id for s in sessions])
        assert [text(s.run(f"{s.id} * 2")) for s in sessions] == [str(s.id * 2) for s in sessions]
        codes = list(pool.map(lambda s: s.delete().status_code, sessions))
        assert codes == [200] * 4, codes
    after = get_driver(server, driver["id"])
    assert after["sessions"] == [first.id] and after["pid"] == driver["pid"], after


def test_sessions_on_one_driver_are_isolated(server, first):
    with scoped_session(server, SHARED) as other:
        other.wait_idle()
        assert driver_of(other)["id"] == driver_of(first)["id"]

        # Python namespaces.
        text(first.run("only_in_first = 'from first'"))
        assert error_output(other.run("only_in_first"))["ename"] == "NameError"
        assert text(first.run("only_in_first")) == "'from first'"

        # Temp views: the first session's view is unknown to the other, in Python and in SQL.
        text(first.run("spark.range(5).createOrReplaceTempView('view_of_first')"))
        table = ok_data(first.run("select count(*) as n from view_of_first", kind="sql"))
        assert table["application/json"]["data"] == [[5]]
        assert "view_of_first" in error_output(other.run("spark.sql('select * from view_of_first').count()"))["evalue"]
        assert "view_of_first" in error_output(other.run("select * from view_of_first", kind="sql"))["evalue"]
        table = ok_data(other.run("select 2 as two", kind="sql"))
        assert table["application/json"]["data"] == [[2]]

        # SQL conf.
        text(first.run("spark.conf.set('spark.sql.shuffle.partitions', '7')"))
        assert text(first.run("spark.conf.get('spark.sql.shuffle.partitions')")) == "'7'"
        assert text(other.run("spark.conf.get('spark.sql.shuffle.partitions')")) == "'200'"

        # Scala REPLs: each has its own definitions and is bound to its session's SparkSession.
        text(first.run("val onlyInFirst = 41", kind="spark"))
        assert scala_value(first, "onlyInFirst + 1") == 42
        assert error_output(other.run("onlyInFirst + 1", kind="spark"))["ename"] == "Error"
        assert scala_value(first, 'spark.table("view_of_first").count()') == 5
        assert scala_value(first, 'spark.conf.get("spark.sql.shuffle.partitions")') == "7"
        assert scala_value(other, 'spark.conf.get("spark.sql.shuffle.partitions")') == "200"


def test_jobs_of_sessions_on_one_driver_run_at_the_same_time(server, first):
    with ExitStack() as stack:
        sessions = [first] + [idle_after_post(server, stack, SHARED)[0] for _ in range(3)]
        driver = driver_of(first)
        assert all(driver_of(s)["id"] == driver["id"] for s in sessions)
        for s in sessions:  # each session's Python side is ready before the timed part
            assert text(s.run("1 + 1")) == "2"

        # All four are submitted before any is waited for.
        statements = [(s, s.submit(SLEEPY_JOB)) for s in sessions]
        peak = {"busySessions": 0, "runningStatements": 0}
        states = set()

        def all_finished():
            now = get_driver(server, driver["id"])
            states.add(now["state"])
            for key in peak:
                peak[key] = max(peak[key], now["load"][key])
            return all(finished(s, st["id"]) for s, st in statements)

        wait_until(all_finished, 180, "the four jobs to finish", interval=0.1)
        for s, st in statements:
            assert text(get_statement(s, st["id"])) == "[0]"
        assert "busy" in states, states
        # runningJobs counts Hearth jobs (the job API), not Spark jobs: none here.
        assert peak == {"busySessions": 4, "runningStatements": 4}, peak
        wait_until(lambda: get_driver(server, driver["id"])["load"] ==
                   {"sessions": 4, "busySessions": 0, "runningStatements": 0, "runningJobs": 0},
                   30, "the driver's load to return to none")

        # Spark's own record of the jobs: one per statement, in its session's job group and pool.
        groups = {f"hearth-{s.id}-{st['id']}": s.id for s, st in statements}

        def recorded_jobs():
            jobs = [j for j in spark_api(driver, "jobs") if j.get("jobGroup") in groups]
            done = len(jobs) == len(groups) and all(j.get("completionTime") for j in jobs)
            return jobs if done else None

        jobs = wait_until(recorded_jobs, 30, "Spark to record the four jobs")
        assert sorted(j["jobGroup"] for j in jobs) == sorted(groups)
        assert all(j["status"] == "SUCCEEDED" for j in jobs), jobs
        pools = {stage["stageId"]: stage["schedulingPool"] for stage in spark_api(driver, "stages")}
        for job in jobs:
            assert {pools[stage] for stage in job["stageIds"]} == {f"hearth-{groups[job['jobGroup']]}"}, job

        submitted = [spark_time(j["submissionTime"]) for j in jobs]
        completed = [spark_time(j["completionTime"]) for j in jobs]
        span = max(completed) - min(submitted)
        ratio = sum(c - s for s, c in zip(submitted, completed)) / span
        print(f"timing: four 5 s jobs of four sessions on one driver: span {span:.2f}s, overlap ratio {ratio:.2f} "
              "(about 4 when parallel, at most 1 when serialised)")
        assert max(submitted) < min(completed), jobs


def test_each_session_on_one_driver_uses_its_own_version_of_a_jar(server, first, tmp_path):
    v1 = build_greeter_jar(str(tmp_path / "v1"), "v1")
    # Jars added by URI must be below the server's whitelist.
    shared = server.shared_dir
    v2 = build_greeter_jar(f"{shared}/greeter-v2-{uuid.uuid4().hex[:8]}", "v2")
    v3 = build_greeter_jar(f"{shared}/greeter-v3-{uuid.uuid4().hex[:8]}", "v3")
    version = "demo.Greeter.version()"
    with ExitStack() as stack:
        p = idle_after_post(server, stack, SHARED)[0]
        q = idle_after_post(server, stack, SHARED)[0]
        driver = driver_of(first)
        assert driver_of(p)["id"] == driver_of(q)["id"] == driver["id"]

        with open(v1, "rb") as f:
            r = server.post(f"/sessions/{p.id}/upload-jar", files={"jar": ("greeter.jar", f.read())})
        assert r.status_code == 200, r.text
        r = server.post(f"/sessions/{q.id}/add-jar", json={"uri": "file://" + v2})
        assert r.status_code == 200, r.text
        assert scala_value(p, version) == "v1"
        assert scala_value(q, version) == "v2"
        # A session that added no jar sees neither.
        assert error_output(first.run(version, kind="spark"))["ename"] == "Error"

        # A session opened later with a third version (jars of a create request are not part of
        # the launch profile) joins the same driver, which was not restarted, and sees its own.
        r_session = idle_after_post(server, stack, dict(SHARED, jars=["file://" + v3]))[0]
        later = driver_of(r_session)
        assert (later["id"], later["pid"]) == (driver["id"], driver["pid"])
        assert scala_value(r_session, version) == "v3"
        assert scala_value(p, version) == "v1"
        assert scala_value(q, version) == "v2"


def test_one_sessions_spark_stop_and_worker_crash_leave_the_others_working(server, first):
    with ExitStack() as stack:
        careless, _ = idle_after_post(server, stack, SHARED)
        driver = driver_of(first)
        assert driver_of(careless)["id"] == driver["id"]
        assert text(first.run("kept = 41")) == ""

        stopped = careless.run("spark.stop()\nsc.stop()")
        assert "spark.stop() ignored" in text(stopped)
        assert text(first.run("spark.range(10).count()")) == "10"

        crashed = error_output(careless.run("import os\nos._exit(1)"))
        assert crashed["ename"] == "WorkerDied", crashed
        # The other session's worker, namespace and Spark are untouched; the careless one recovers.
        assert text(first.run("kept + 1")) == "42"
        assert text(first.run("sc.parallelize(range(4), 2).sum()")) == "6"
        assert text(careless.run("spark.range(3).count()")) == "3"
        assert get_driver(server, driver["id"])["pid"] == driver["pid"]


def test_closing_one_session_keeps_the_driver_and_stopping_the_driver_ends_the_rest(server, first):
    body = dict(SHARED, proxyUser=OTHER_USER)
    with scoped_session(server, body) as one, scoped_session(server, body) as two:
        # The second request comes while the driver of the first is still starting: one driver.
        one.wait_idle(240)
        two.wait_idle()
        driver = driver_of(one)
        assert driver_of(two)["id"] == driver["id"]
        assert driver["user"] == OTHER_USER
        # Another user's driver: the first session's driver is not shared with this user.
        mine = driver_of(first)
        assert driver["id"] != mine["id"] and driver["pid"] != mine["pid"]
        assert mine["user"] != OTHER_USER
        jvm = driver_jvm(server, driver["pid"])

        # Deleting one session closes only that session.
        r = one.delete()
        assert r.status_code == 200, r.text
        assert server.get(f"/sessions/{one.id}").status_code == 404
        assert text(two.run("'still here'")) == "'still here'"
        after = get_driver(server, driver["id"])
        assert after["sessions"] == [two.id] and after["state"] == "idle" and after["pid"] == driver["pid"]
        assert process_state(jvm) not in (None, psutil.STATUS_ZOMBIE)

        # Stopping the driver (through the session) ends the session and its running statement.
        text(two.run("import time"))
        running = two.submit("time.sleep(600)")
        wait_until(lambda: get_statement(two, running["id"])["state"] == "running", 60, "the statement to run")
        descendants = jvm.children(recursive=True)
        r = server.delete(f"/sessions/{two.id}/driver")
        assert r.status_code == 200 and r.json() == {"msg": "deleted"}, r.text
        # The answer comes after the driver process has exited.
        assert process_state(jvm) in (None, psutil.STATUS_ZOMBIE)
        wait_until(lambda: not living(descendants), 30, "the driver's child processes to end")
        wait_until(lambda: two.state() == "dead", 30, "the session on the stopped driver to be dead")
        ended = two.wait_statement(running["id"], timeout=30)
        assert ended["state"] == "cancelled" or ended["output"]["status"] == "error", ended
        assert driver_gone(server, driver["id"])
        r = server.post(f"/sessions/{two.id}/statements", json={"code": "1"})
        assert r.status_code == 400, r.text

    # The other user's driver was untouched.
    assert get_driver(server, mine["id"])["pid"] == mine["pid"]
    assert text(first.run("1 + 1")) == "2"


def test_an_unknown_share_level_is_refused_and_starts_nothing(hearth):
    sessions_before = hearth.get("/sessions").json()["total"]
    drivers_before = hearth.get("/drivers").json()["total"]
    for value in ("everyone", "", 1, ["user"]):
        r = hearth.post("/sessions", json={"kind": "pyspark", "shareLevel": value})
        assert r.status_code == 400, (value, r.text)
        msg = r.json()["msg"]
        assert isinstance(msg, str) and msg, r.text
        assert value != "everyone" or "everyone" in msg, msg  # names the value it refuses
    assert hearth.get("/sessions").json()["total"] == sessions_before
    assert hearth.get("/drivers").json()["total"] == drivers_before


def test_unknown_drivers_are_not_found(hearth):
    for method, path in (("get", "/drivers/no-such-driver"), ("delete", "/drivers/no-such-driver"),
                         ("get", "/sessions/987654321/driver"), ("delete", "/sessions/987654321/driver")):
        r = getattr(hearth, method)(path)
        assert r.status_code == 404, (method, path, r.text)
        assert isinstance(r.json()["msg"], str) and r.json()["msg"], r.text
