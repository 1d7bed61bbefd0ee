"""What users see when drivers end: killed mid-statement, or left without a server."""
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil

from hearth_harness import HearthServer, Redis, command_line, driver_processes, process_name, scoped_session, wait_until

FAST_CONF = {"spark.ui.enabled": "false"}


def jvm_of(processes):
    return next(p for p in processes if "io.hearth.driver.HearthDriver" in command_line(p))


def test_session_shows_busy_while_a_statement_runs_then_idle(hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-busy-{uuid.uuid4().hex[:8]}",
                                 "conf": FAST_CONF}) as session:
        session.wait_idle()
        statement = session.submit("import time\ntime.sleep(1)\n'slept'")
        # Busy from the moment the statement is accepted, until it has finished.
        assert session.state() == "busy"
        done = session.wait_statement(statement["id"])
        assert done["output"]["data"]["text/plain"] == "'slept'"
        assert session.state() == "idle"

        # Two clients delete the session at once (sparkmagic's %%cleanup racing a user): one
        # deletes it, the other is told it is gone or deleted; the server stays up.
        with ThreadPoolExecutor(max_workers=2) as pool:
            codes = sorted(pool.map(lambda _: session.delete().status_code, range(2)))
        assert codes in ([200, 200], [200, 404]), codes
        assert hearth.get(f"/sessions/{session.id}").status_code == 404


def test_a_driver_killed_mid_statement_ends_the_session_and_the_statement(hearth):
    name = f"e2e-kill-{uuid.uuid4().hex[:8]}"
    with scoped_session(hearth, {"kind": "pyspark", "name": name, "conf": FAST_CONF}) as session:
        session.wait_idle()
        statement = session.submit("import time\ntime.sleep(600)")
        wait_until(lambda: hearth.get(f"/sessions/{session.id}/statements/{statement['id']}").json()["state"]
                   == "running", 60, "the statement to run")
        jvm_of(driver_processes(name)).send_signal(signal.SIGKILL)

        wait_until(lambda: session.state() == "dead", 60, "the session to be dead")
        ended = session.wait_statement(statement["id"], timeout=10)
        assert ended["state"] == "available"
        assert ended["output"]["status"] == "error"
        assert "driver exited" in ended["output"]["evalue"]
        # Nothing of the driver is left, and a new statement is refused clearly.
        wait_until(lambda: not driver_processes(name), 30, "the driver's processes to be gone")
        r = hearth.post(f"/sessions/{session.id}/statements", json={"code": "1"})
        assert r.status_code == 400 and r.json() == {"msg": "requirement failed: Session isn't active."}


def test_a_driver_exits_by_itself_when_its_server_is_gone_and_redis_keeps_the_record():
    # A Redis of its own: the restarted server below takes over whatever its Redis holds.
    redis = Redis()
    server = HearthServer(redis.url, "--driver-idle-timeout", "5s", "--heartbeat-interval", "500ms")
    name = f"e2e-orphan-{uuid.uuid4().hex[:8]}"
    try:
        r = server.post("/sessions", json={"kind": "pyspark", "name": name, "conf": FAST_CONF})
        assert r.status_code == 201
        sid = r.json()["id"]
        wait_until(lambda: server.get(f"/sessions/{sid}/state").json()["state"] == "idle", 180, "idle")
        st = server.post(f"/sessions/{sid}/statements", json={"code": "1+1"}).json()
        wait_until(lambda: server.get(f"/sessions/{sid}/statements/{st['id']}").json()["state"] == "available",
                   120, "the statement")
        processes = driver_processes(name)
        assert any(process_name(p).startswith("python") for p in processes)
    finally:
        server.proc.kill()  # the server dies without stopping its drivers
        server.stop()
    # The driver hears nothing for its idle timeout and exits, taking its Python worker along.
    gone, alive = psutil.wait_procs(processes, timeout=90)
    assert not alive, f"still running: {[(p.pid, process_name(p)) for p in alive]}"

    # A new server on the same Redis still knows the session and its finished statement; the
    # session's driver is gone, so it is dead.
    restarted = HearthServer(redis.url)
    try:
        assert restarted.get(f"/sessions/{sid}/state").json() == {"id": sid, "state": "dead"}
        kept = restarted.get(f"/sessions/{sid}/statements/{st['id']}").json()
        assert kept["output"] == {"status": "ok", "execution_count": st["id"], "data": {"text/plain": "2"}}
        assert restarted.delete(f"/sessions/{sid}").status_code == 200
    finally:
        assert restarted.stop() == 0, restarted.output()
        redis.stop()
