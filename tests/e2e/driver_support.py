"""Helpers for the shared-driver and driver-pool tests: the Driver resource, the server's driver
processes, Spark's own job records, and jars built from Java source at test time."""
import os
import subprocess
from datetime import datetime

import psutil
import requests

from hearth_harness import command_line, process_name, process_state

DRIVER_KEYS = {"id", "state", "user", "shareLevel", "pooled", "profile", "sessions", "load", "appId",
               "sparkUiUrl", "pid", "created", "lastUsed"}
LOAD_KEYS = {"sessions", "busySessions", "runningStatements", "runningJobs"}
DRIVER_STATES = {"starting", "idle", "busy", "stopping", "dead", "error"}
DRIVER_CLASS = "io.hearth.driver.HearthDriver"


def checked_driver(driver):
    """A Driver resource, after checking the fields every client may rely on."""
    assert set(driver) == DRIVER_KEYS, driver
    assert isinstance(driver["id"], str) and driver["id"], driver
    assert driver["state"] in DRIVER_STATES, driver
    assert driver["shareLevel"] in ("session", "user"), driver
    assert isinstance(driver["pooled"], bool), driver
    assert isinstance(driver["profile"], dict), driver
    assert all(isinstance(sid, int) for sid in driver["sessions"]), driver
    assert set(driver["load"]) == LOAD_KEYS, driver
    assert driver["load"]["sessions"] == len(driver["sessions"]), driver
    assert isinstance(driver["pid"], int) and driver["pid"] > 0, driver
    assert 0 < driver["created"] <= driver["lastUsed"], driver
    return driver


def get_driver(server, driver_id):
    r = server.get(f"/drivers/{driver_id}")
    assert r.status_code == 200, r.text
    return checked_driver(r.json())


def list_drivers(server):
    r = server.get("/drivers")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"total", "drivers"}, body
    assert body["total"] == len(body["drivers"]), body
    return [checked_driver(d) for d in body["drivers"]]


def driver_of(session):
    """The Driver a session runs on (GET /sessions/{id}/driver)."""
    r = session.server.get(f"/sessions/{session.id}/driver")
    assert r.status_code == 200, r.text
    return checked_driver(r.json())


def driver_gone(server, driver_id):
    """True once a stopped driver is no longer a running one: unknown (404) or listed as dead."""
    r = server.get(f"/drivers/{driver_id}")
    if r.status_code == 404:
        return True
    assert r.status_code == 200, r.text
    return r.json()["state"] == "dead"


def pooled_idle_drivers(server):
    return [d for d in list_drivers(server) if d["pooled"] and d["state"] == "idle"]


def driver_launches(server):
    """{pid: process} of the drivers this server has started, one per driver at any point of its
    start-up: the server's descendants whose command line runs the Hearth driver class, leaving
    out those whose parent does too (spark-submit's own launcher helpers while it starts; the
    spark-submit process itself becomes the driver JVM by exec, so its pid is the driver's)."""
    try:
        descendants = psutil.Process(server.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    matching = {p.pid: p for p in descendants
                if process_state(p) not in (None, psutil.STATUS_ZOMBIE) and DRIVER_CLASS in command_line(p)}
    launches = {}
    for pid, process in matching.items():
        try:
            if process.ppid() not in matching:
                launches[pid] = process
        except psutil.NoSuchProcess:
            pass
    return launches


def driver_jvm(server, pid):
    """The running driver JVM with this pid, a descendant of `server`; fails otherwise."""
    process = driver_launches(server).get(pid)
    assert process is not None, f"no driver process {pid} below the server: {driver_launches(server)}"
    assert process_name(process) == "java", command_line(process)
    return process


def living(processes):
    """The processes of a list that still run (zombies count as ended)."""
    return [p for p in processes if process_state(p) not in (None, psutil.STATUS_ZOMBIE)]


def spark_time(value):
    """Seconds since the epoch of a timestamp of Spark's REST API, e.g. 2026-11-22T03:40:01.123GMT."""
    return datetime.strptime(value.replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def spark_api(driver, what):
    """A list from the Spark UI REST API of a driver's application (jobs, stages, ...)."""
    assert driver["sparkUiUrl"] and driver["appId"], driver
    r = requests.get(f"{driver['sparkUiUrl']}/api/v1/applications/{driver['appId']}/{what}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def build_greeter_jar(directory, version):
    """directory/greeter.jar holding class demo.Greeter whose static version() returns `version`,
    compiled with the JDK on PATH. Every version has the same class name and the same jar file
    name, as two releases of one library would."""
    os.makedirs(os.path.join(directory, "demo"), exist_ok=True)
    source = os.path.join(directory, "demo", "Greeter.java")
    with open(source, "w") as f:
        f.write("package demo;\n"
                "public class Greeter {\n"
                f'  public static String version() {{ return "{version}"; }}\n'
                "}\n")
    subprocess.run(["javac", "--release", "17", "-d", directory, source], check=True)
    jar = os.path.join(directory, "greeter.jar")
    subprocess.run(["jar", "cf", jar, "-C", directory, "demo/Greeter.class"], check=True)
    return jar
