"""The warm driver pool (--driver-pool-size) and the unused-driver timeout (--driver-unused-timeout).

The module runs its own hearth-server (and Redis, so its driver listing is its own) with one
pooled driver. Three drivers in all: the first pooled one (taken by a session), its refill, and
one for a session whose profile is not the pool's.
"""
import time

import psutil
import pytest

from driver_support import (driver_gone, driver_jvm, driver_launches, driver_of, get_driver, list_drivers,
                            pooled_idle_drivers)
from hearth_harness import HearthServer, Redis, ok_text as text, process_state, scoped_session, wait_until

UNUSED_TIMEOUT_S = 5
GC_INTERVAL_S = 1
CUSTOM_CONF = {"spark.hearth.e2e.profile": "custom"}


@pytest.fixture(scope="module")
def server():
    redis = Redis()
    server = HearthServer(redis.url, "--driver-pool-size", "1", "--driver-unused-timeout", f"{UNUSED_TIMEOUT_S}s",
                          "--gc-interval", f"{GC_INTERVAL_S}s")
    yield server
    code = server.stop()
    redis.stop()
    assert code == 0, f"hearth-server did not stop cleanly (exit code {code}):\n{server.output()}"


def the_pooled_driver(server, other_than=None):
    """Waits for the pool's one idle driver (not `other_than`) and returns it."""
    def one_pooled():
        pooled = [d for d in pooled_idle_drivers(server) if d["id"] != other_than]
        assert len(pooled) <= 1, pooled  # the pool never holds more than its size
        return pooled[0] if pooled else None
    return wait_until(one_pooled, 240, "an idle driver in the pool", interval=0.2)


def alive(process):
    return process_state(process) not in (None, psutil.STATUS_ZOMBIE)


def test_a_session_takes_the_pooled_driver_and_the_pool_refills(server):
    pooled = the_pooled_driver(server)
    assert pooled["sessions"] == [] and pooled["user"] is None
    assert pooled["load"] == {"sessions": 0, "busySessions": 0, "runningStatements": 0, "runningJobs": 0}
    assert [d["id"] for d in list_drivers(server) if d["state"] not in ("dead", "error")] == [pooled["id"]]
    before = driver_launches(server)
    assert set(before) == {pooled["pid"]}, before
    jvm = driver_jvm(server, pooled["pid"])

    started = time.monotonic()
    with scoped_session(server, {"kind": "pyspark"}) as session:
        session.wait_idle()
        print(f"timing: session on the pooled driver, POST to idle {time.monotonic() - started:.2f}s")

        # The session runs on the pooled driver's own process: nothing was launched for it.
        mine = driver_of(session)
        assert (mine["id"], mine["pid"]) == (pooled["id"], pooled["pid"])
        assert mine["pooled"] is False and mine["shareLevel"] == "session"
        assert mine["sessions"] == [session.id]
        after = driver_launches(server)
        assert pooled["pid"] in after and alive(jvm)
        started_since = set(after) - set(before)
        assert len(started_since) <= 1, after  # at most the pool's refill
        assert server.get(f"/sessions/{session.id}").json()["appId"] == pooled["appId"]
        assert text(session.run("spark.range(10).count()")) == "10"

        # The pool refills in the background with a new driver process.
        refill = the_pooled_driver(server, other_than=pooled["id"])
        assert refill["pid"] != pooled["pid"]
        driver_jvm(server, refill["pid"])  # fails unless it is a running driver JVM of this server
        assert started_since <= {refill["pid"]}, (started_since, refill)

        # DELETE /drivers/{id} stops the driver and ends its session; the pool keeps its driver.
        descendants = jvm.children(recursive=True)
        r = server.delete(f"/drivers/{pooled['id']}")
        assert r.status_code == 200 and r.json() == {"msg": "deleted"}, r.text
        assert not alive(jvm)
        wait_until(lambda: not any(alive(p) for p in descendants), 30, "the driver's child processes to end")
        wait_until(lambda: session.state() == "dead", 30, "the session of the stopped driver to be dead")
        assert driver_gone(server, pooled["id"])
        kept = get_driver(server, refill["id"])
        assert kept["pooled"] is True and kept["state"] == "idle" and kept["pid"] == refill["pid"]


def test_another_profile_gets_its_own_driver_which_stops_when_unused_while_the_pool_stays(server):
    pooled = the_pooled_driver(server)
    pooled_since = time.monotonic()  # pooled and idle from here on, at the latest
    pooled_jvm = driver_jvm(server, pooled["pid"])
    body = {"kind": "pyspark", "shareLevel": "user", "conf": CUSTOM_CONF}

    with scoped_session(server, body) as session:
        session.wait_idle(240)
        custom = driver_of(session)
        # Not the pooled driver: its profile is not the pool's default one.
        assert custom["id"] != pooled["id"] and custom["pid"] != pooled["pid"]
        assert custom["shareLevel"] == "user" and custom["pooled"] is False
        assert CUSTOM_CONF.items() <= custom["profile"]["conf"].items(), custom["profile"]
        still = get_driver(server, pooled["id"])
        assert still["pooled"] is True and still["sessions"] == [] and still["pid"] == pooled["pid"]
        assert text(session.run("spark.conf.get('spark.hearth.e2e.profile')")) == "'custom'"
        custom_jvm = driver_jvm(server, custom["pid"])

    # Without sessions the shared driver waits for its unused timeout: a session opened now
    # attaches to it at once.
    left = get_driver(server, custom["id"])
    assert left["sessions"] == [] and left["state"] == "idle" and alive(custom_jvm), left
    with scoped_session(server, body) as again:
        again.wait_idle(60)
        assert (driver_of(again)["id"], driver_of(again)["pid"]) == (custom["id"], custom["pid"])
    unused_since = time.monotonic()

    # Then it is stopped; the pooled driver, unused for longer, is kept.
    wait_until(lambda: driver_gone(server, custom["id"]), UNUSED_TIMEOUT_S + GC_INTERVAL_S + 60,
               "the unused shared driver to be stopped")
    wait_until(lambda: not alive(custom_jvm), 30, "the unused driver's process to end")
    print(f"timing: unused shared driver stopped {time.monotonic() - unused_since:.2f}s after its last session "
          f"(--driver-unused-timeout {UNUSED_TIMEOUT_S}s)")
    assert time.monotonic() - pooled_since > UNUSED_TIMEOUT_S + GC_INTERVAL_S
    kept = get_driver(server, pooled["id"])
    assert kept["pooled"] is True and kept["state"] == "idle" and kept["pid"] == pooled["pid"], kept
    assert alive(pooled_jvm)
