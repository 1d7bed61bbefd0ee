"""Jobs (POST /sessions/{id}/jobs): compiled classes run in a session's Spark driver, with real
Spark. Ordinary Spark applications (main(String[])) and io.hearth.job.HearthJob classes, their
results and failures, cancelling, state transitions, concurrency, bad input, and a jar handed
over by the start request.

One pyspark session (one driver) serves the whole module; the job classes (job_sources.py) are
compiled at test time and uploaded to it once. Jobs that must be seen running either wait for a
gate file the test creates or run until cancelled, so nothing depends on how fast the machine is.
"""
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from driver_support import driver_of, spark_api
from hearth_harness import ok_text as text, scoped_session, wait_until
from job_sources import FIELD_SOURCES, JOBS_SOURCES, build_job_jar

JOB_KEYS = ["id", "sessionId", "className", "jar", "args", "conf", "state", "progress", "created",
            "started", "completed", "result", "error", "traceback"]
JOB_STATES = {"queued", "running", "succeeded", "failed", "cancelling", "cancelled"}
FINAL_STATES = {"succeeded", "failed", "cancelled"}


def open_gate(gate):
    """Opens a Gate job's gate at once: the job polls for the file, so it must appear with its
    text already in it (write then rename), never empty."""
    staged = gate.with_name(gate.name + ".staged")
    staged.write_text("open")
    os.replace(staged, gate)


@pytest.fixture(scope="module")
def jobs_jar(tmp_path_factory):
    directory = tmp_path_factory.mktemp("jobs-jar")
    return build_job_jar(str(directory), "e2ejobs", JOBS_SOURCES, f"e2e-jobs-{uuid.uuid4().hex[:8]}.jar")


@pytest.fixture(scope="module")
def module_session(hearth, jobs_jar):
    """The module's pyspark session, idle, with the job classes' jar uploaded to it."""
    started = time.monotonic()
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-jobs-{uuid.uuid4().hex[:8]}"}) as s:
        s.wait_idle(240)
        print(f"timing: session POST to idle {time.monotonic() - started:.2f}s")
        with open(jobs_jar, "rb") as f:
            r = hearth.post(f"/sessions/{s.id}/upload-jar", files={"jar": (os.path.basename(jobs_jar), f.read())})
        assert r.status_code == 200, r.text
        yield s


@pytest.fixture
def session(module_session, request):
    """The module's session; when the test fails, prints its jobs, state and driver log. Jobs a
    test leaves unfinished are cancelled, so that they do not hold the next test's task slots."""
    failed_before = request.session.testsfailed
    yield module_session
    if request.session.testsfailed > failed_before:
        print("--- jobs ---\n" + module_session.server.get(f"/sessions/{module_session.id}/jobs").text)
        print(module_session.describe())
    left = [j["id"] for j in list_jobs(module_session) if j["state"] not in FINAL_STATES]
    for job_id in left:
        cancel_job(module_session, job_id)
    for job_id in left:
        wait_job(module_session, job_id, FINAL_STATES, timeout=60)


def checked_job(job):
    """A Job resource, after checking the fields every client may rely on."""
    assert list(job) == JOB_KEYS, job
    assert job["state"] in JOB_STATES, job
    assert isinstance(job["id"], int) and job["id"] >= 0, job
    assert isinstance(job["args"], list) and isinstance(job["conf"], dict), job
    assert isinstance(job["traceback"], list), job
    assert 0 <= job["progress"] <= 1, job
    assert job["created"] > 0, job
    return job


def start_job(session, class_name, **fields):
    """POSTs a job; checks the 201 answer (queued, nothing run yet) and returns the Job."""
    r = session.server.post(f"/sessions/{session.id}/jobs", json=dict(fields, className=class_name))
    assert r.status_code == 201, r.text
    job = checked_job(r.json())
    assert r.headers["Location"] == f"/sessions/{session.id}/jobs/{job['id']}"
    assert job["sessionId"] == session.id and job["className"] == class_name, job
    assert job["state"] == "queued", job
    assert job["started"] == 0 and job["completed"] == 0, job
    assert job["result"] is None and job["error"] is None and job["traceback"] == [], job
    return job


def get_job(session, job_id):
    r = session.server.get(f"/sessions/{session.id}/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return checked_job(r.json())


def list_jobs(session):
    r = session.server.get(f"/sessions/{session.id}/jobs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["total", "jobs"] and body["total"] == len(body["jobs"]), body
    return [checked_job(j) for j in body["jobs"]]


def cancel_job(session, job_id):
    r = session.server.post(f"/sessions/{session.id}/jobs/{job_id}/cancel", json={})
    assert r.status_code == 200, r.text
    return checked_job(r.json())


def wait_job(session, job_id, states, timeout=120, seen=None):
    """The job once its state is one of `states`. `seen`, a list, collects the distinct states
    the polls observed, in order."""
    def reached():
        job = get_job(session, job_id)
        if seen is not None and (not seen or seen[-1] != job["state"]):
            seen.append(job["state"])
        return job if job["state"] in states else None
    return wait_until(reached, timeout, f"job {job_id} of session {session.id} to be {sorted(states)}")


def final_job(session, job_id, timeout=120, seen=None):
    job = wait_job(session, job_id, FINAL_STATES, timeout, seen)
    assert 0 < job["started"] <= job["completed"], job
    assert job["created"] <= job["started"], job
    return job


def succeeded(job):
    assert job["state"] == "succeeded", job
    assert job["error"] is None and job["traceback"] == [], job
    assert job["progress"] == 1, job
    return job


def failed(job):
    assert job["state"] == "failed", job
    assert job["result"] is None, job
    assert isinstance(job["error"], str) and job["error"], job
    return job


def spark_jobs_of(session, job_id):
    """Spark's own records (UI REST API) of the Spark jobs a job submitted."""
    group = f"hearth-{session.id}-job-{job_id}"
    return [j for j in spark_api(driver_of(session), "jobs") if j.get("jobGroup") == group]


# ---- running classes ------------------------------------------------------------------------

def test_a_main_class_gets_the_sessions_spark_session(session):
    name = uuid.uuid4().hex[:8]
    started = time.monotonic()
    job = start_job(session, "e2ejobs.MakeView", args=[name])
    assert job["args"] == [name] and job["conf"] == {} and job["jar"] is None, job
    done = succeeded(final_job(session, job["id"]))
    print(f"timing: main-class job POST to succeeded {time.monotonic() - started:.2f}s")
    assert done["result"] is None, done
    assert {k: v for k, v in done.items() if k not in ("state", "progress", "started", "completed")} == \
        {k: v for k, v in job.items() if k not in ("state", "progress", "started", "completed")}

    # The temp view the job registered is the session's: its statements see it.
    assert text(session.run(f"spark.table('job_made_{name}').count()")) == "5"
    assert get_job(session, job["id"]) == done
    # Cancelling a finished job changes nothing.
    assert cancel_job(session, job["id"]) == done


def test_a_hearth_job_returns_its_result_as_json(session):
    job = start_job(session, "e2ejobs.Count", args=["a", "b c"], conf={"label": "x", "minCount": 2, "verbose": True})
    assert job["conf"] == {"label": "x", "minCount": "2", "verbose": "true"}, job
    done = succeeded(final_job(session, job["id"]))
    assert done["result"] == {"count": 100, "sum": 10, "args": ["a", "b c"],
                              "conf": {"label": "x", "minCount": "2", "verbose": "true"},
                              "jobId": job["id"], "sessionId": session.id}, done

    # Spark's record: the job's Spark jobs (the SQL count, the RDD reduce) ran in its job group
    # and in the session's scheduler pool.
    def recorded():
        jobs = spark_jobs_of(session, job["id"])
        return jobs if len(jobs) >= 2 and all(j.get("completionTime") for j in jobs) else None

    spark_jobs = wait_until(recorded, 30, "Spark to record the job's Spark jobs")
    assert all(j["status"] == "SUCCEEDED" for j in spark_jobs), spark_jobs
    pools = {s["stageId"]: s["schedulingPool"] for s in spark_api(driver_of(session), "stages")
             if s["status"] != "SKIPPED"}
    used = {pools[stage] for j in spark_jobs for stage in j["stageIds"] if stage in pools}
    assert used == {f"hearth-{session.id}"}, (spark_jobs, pools)


@pytest.mark.parametrize("class_name, error, frame", [
    ("e2ejobs.Fails", "java.lang.IllegalStateException: boom", "e2ejobs.Fails.call(Fails.java:"),
    ("e2ejobs.FailsInMain", "java.lang.IllegalStateException: boom in main",
     "e2ejobs.FailsInMain.main(FailsInMain.java:"),
])
def test_an_exception_fails_the_job_with_its_class_message_and_traceback(session, class_name, error, frame):
    job = start_job(session, class_name)
    done = failed(final_job(session, job["id"]))
    assert done["error"] == error, done
    assert done["traceback"][0] == error, done
    assert any(frame in line for line in done["traceback"]), done["traceback"]


# ---- cancelling -----------------------------------------------------------------------------

def spark_task_running(session, job_id):
    jobs = spark_jobs_of(session, job_id)
    return len(jobs) == 1 and jobs[0]["status"] == "RUNNING" and jobs[0]["numActiveTasks"] == 1


@pytest.mark.parametrize("round_", range(2))
@pytest.mark.parametrize("class_name", ["e2ejobs.SleepyTasks", "e2ejobs.Watcher"])
def test_cancelling_a_running_job_ends_it_cancelled(session, class_name, round_):
    """SleepyTasks blocks in a Spark task that sleeps 60 s; Watcher ignores interrupts and stops
    when isCancelled() turns true, then returns a value. Both end cancelled long before they
    would have finished on their own."""
    job = start_job(session, class_name)
    seen = ["queued"]
    running = wait_job(session, job["id"], {"running"} | FINAL_STATES, timeout=60, seen=seen)
    assert running["state"] == "running" and running["started"] > 0 and running["completed"] == 0, running
    if class_name == "e2ejobs.SleepyTasks":
        wait_until(lambda: spark_task_running(session, job["id"]), 60, "the job's Spark task to run")

    started = time.monotonic()
    answer = cancel_job(session, job["id"])
    assert answer["state"] in ("cancelling", "cancelled"), answer
    # Less than the task's 60 s sleep, and much less than the watcher's ten minutes.
    done = final_job(session, job["id"], timeout=40, seen=seen)
    print(f"timing: {class_name} cancel to {done['state']} {time.monotonic() - started:.2f}s")
    assert done["state"] == "cancelled", done
    assert done["result"] is None and done["error"] is None and done["traceback"] == [], done
    assert seen in (["queued", "running", "cancelled"], ["queued", "running", "cancelling", "cancelled"]), seen
    assert cancel_job(session, job["id"]) == done

    if class_name == "e2ejobs.SleepyTasks":
        # Its Spark job was cancelled and its task killed: no slot stays taken.
        def spark_job_ended():
            jobs = spark_jobs_of(session, job["id"])
            return jobs if all(j["status"] != "RUNNING" and j["numActiveTasks"] == 0 for j in jobs) else None
        ended = wait_until(spark_job_ended, 30, "the job's Spark job to end")
        assert [(j["status"], j["numCompletedTasks"]) for j in ended] == [("FAILED", 0)], ended
    # The session goes on.
    assert text(session.run("spark.range(7).count()")) == "7"
    assert get_job(session, job["id"]) == done


def test_a_job_goes_queued_running_succeeded_while_statements_run(session, tmp_path):
    gate = tmp_path / "gate"
    job = start_job(session, "e2ejobs.Gate", args=[str(gate), "10"])
    seen = [job["state"]]
    running = wait_job(session, job["id"], {"running"} | FINAL_STATES, seen=seen)
    assert running["state"] == "running", running
    assert running["started"] >= running["created"] and running["completed"] == 0, running
    assert running["result"] is None and running["error"] is None, running
    load = driver_of(session)["load"]
    assert load["runningJobs"] == 1, load

    # The session's statements run beside the job, Spark work included.
    assert text(session.run("spark.range(3).count()")) == "3"
    assert get_job(session, job["id"])["state"] == "running"

    open_gate(gate)
    done = succeeded(final_job(session, job["id"], seen=seen))
    assert seen == ["queued", "running", "succeeded"], seen
    assert done["result"] == {"gate": "open", "count": 10, "jobId": job["id"]}, done
    assert done["started"] == running["started"], (running, done)
    wait_until(lambda: driver_of(session)["load"]["runningJobs"] == 0, 30, "the driver to count no running job")


@pytest.mark.parametrize("round_", range(3))
def test_ten_jobs_run_at_the_same_time(session, tmp_path, round_):
    gate = tmp_path / "gate"
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        jobs = list(pool.map(lambda i: start_job(session, "e2ejobs.Gate", args=[str(gate), str(10 + i)]), range(10)))
    ids = [j["id"] for j in jobs]
    assert len(set(ids)) == 10, ids

    def all_running():
        listed = {j["id"]: j for j in list_jobs(session)}
        return listed if all(listed[i]["state"] == "running" for i in ids) else None

    # All ten are running at one moment: none waits for another.
    wait_until(all_running, 120, "the ten jobs to run at once", interval=0.2)
    running_s = time.monotonic() - started
    assert driver_of(session)["load"]["runningJobs"] == 10
    open_gate(gate)
    done = [succeeded(final_job(session, i)) for i in ids]
    print(f"timing: ten jobs POST to all running {running_s:.2f}s, to all succeeded {time.monotonic() - started:.2f}s")
    for i, (job, end) in enumerate(zip(jobs, done)):
        assert end["result"] == {"gate": "open", "count": 10 + i, "jobId": job["id"]}, end
    assert max(j["started"] for j in done) < min(j["completed"] for j in done), done

    listed = {j["id"]: j for j in list_jobs(session)}
    assert [listed[i] for i in ids] == done


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("class_name, error_start, fragments", [
    ("e2ejobs.NoSuchJob", "java.lang.ClassNotFoundException: e2ejobs.NoSuchJob", []),
    ("e2ejobs.Neither", "java.lang.IllegalArgumentException: ", ["e2ejobs.Neither", "HearthJob", "main(String[])"]),
    ("e2ejobs.NoConstructor", "java.lang.IllegalArgumentException: ",
     ["e2ejobs.NoConstructor", "no-argument constructor"]),
    ("e2ejobs.Opaque", "", ["cannot be serialised as JSON", "java.lang.Object"]),
])
def test_a_class_that_cannot_run_fails_the_job_clearly(session, class_name, error_start, fragments):
    job = start_job(session, class_name)
    done = failed(final_job(session, job["id"]))
    assert done["error"].startswith(error_start), done
    assert all(f in done["error"] for f in fragments), done
    # The session goes on.
    assert text(session.run("1 + 1")) == "2"


@pytest.mark.parametrize("body", [{}, {"args": ["x"]}, {"className": ""}])
def test_a_start_request_without_a_class_is_400_and_starts_nothing(session, body):
    before = len(list_jobs(session))
    r = session.server.post(f"/sessions/{session.id}/jobs", json=body)
    assert r.status_code == 400, r.text
    assert list(r.json()) == ["msg"] and "className" in r.json()["msg"], r.text
    assert len(list_jobs(session)) == before


# ---- a jar in the start request --------------------------------------------------------------

def test_the_jar_of_a_start_request_is_added_to_the_session(session):
    shared = session.server.shared_dir
    name = f"e2e-field-{uuid.uuid4().hex[:8]}"
    jar = build_job_jar(os.path.join(shared, name), "e2efield", FIELD_SOURCES, f"{name}.jar")
    uri = "file://" + os.path.realpath(jar)

    # Not in the session before.
    before = failed(final_job(session, start_job(session, "e2efield.ViaField")["id"]))
    assert before["error"].startswith("java.lang.ClassNotFoundException: e2efield.ViaField"), before

    job = start_job(session, "e2efield.ViaField", jar="file://" + jar, args=["x", "y"])
    assert job["jar"] == uri, job
    done = succeeded(final_job(session, job["id"]))
    assert done["result"] == "via the jar field: x,y", done

    # The jar stays added to the session, as with add-jar.
    again = succeeded(final_job(session, start_job(session, "e2efield.ViaField", args=["z"])["id"]))
    assert again["result"] == "via the jar field: z", again

    # A jar below the shared directory that does not exist fails the job, naming it.
    missing = os.path.join(shared, name, "missing.jar")
    gone = failed(final_job(session, start_job(session, "e2efield.ViaField", jar="file://" + missing)["id"]))
    assert "missing.jar" in gone["error"], gone
