"""A driver holds nothing of its server: a server killed with `kill -9` can be started again on
its ports while its drivers still run, because none of them inherited a listening socket."""
import os
import stat
import uuid

import psutil

from hearth_harness import (HearthServer, Redis, command_line, driver_processes, ok_text, process_name,
                            process_state, scoped_session, wait_until)

FAST_CONF = {"spark.ui.enabled": "false"}
DRIVER_CLASS = "io.hearth.driver.HearthDriver"


def open_objects(pid):
    """{fd: ((st_dev, st_ino), link)} of a process's descriptors that are sockets, pipes or
    regular files: those that show what it shares with another process. (Anonymous inodes such
    as epoll and eventfd all share one inode, and a device such as /dev/null is opened by
    everyone, so they cannot show inheritance.)"""
    objects = {}
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except (FileNotFoundError, ProcessLookupError):
        return objects
    for name in names:
        path = os.path.join(fd_dir, name)
        try:
            info = os.stat(path)
            link = os.readlink(path)
        except (FileNotFoundError, ProcessLookupError):
            continue  # closed meanwhile
        if stat.S_ISSOCK(info.st_mode) or stat.S_ISFIFO(info.st_mode) or stat.S_ISREG(info.st_mode):
            objects[int(name)] = ((info.st_dev, info.st_ino), link)
    return objects


def test_a_driver_and_its_python_workers_hold_no_socket_or_file_of_the_server(hearth):
    name = f"e2e-fds-{uuid.uuid4().hex[:8]}"
    with scoped_session(hearth, {"kind": "pyspark", "name": name, "conf": FAST_CONF}) as session:
        session.wait_idle()
        # A Spark job as well, so the executors' Python workers are checked beside the session's.
        assert ok_text(session.run("sc.parallelize(range(4), 2).map(lambda x: x * 2).sum()")) == "12"
        processes = driver_processes(name)
        jvm = next(p for p in processes if DRIVER_CLASS in command_line(p))
        assert any(process_name(p).startswith("python") for p in processes), processes

        server_objects = {key: link for key, link in open_objects(hearth.proc.pid).values()}
        assert any(link.startswith("socket:") for link in server_objects.values())  # REST at least
        shared = []
        for process in processes:
            for fd, (key, link) in sorted(open_objects(process.pid).items()):
                # The driver's stdout and stderr are the pipe the server reads its log from.
                if process.pid == jvm.pid and fd in (0, 1, 2):
                    continue
                if key in server_objects:
                    shared.append(f"pid {process.pid} ({process_name(process)}) fd {fd} -> {link}")
        assert not shared, "descriptors of hearth-server held by its driver:\n" + "\n".join(shared)


def test_a_server_killed_while_its_driver_runs_starts_again_on_the_same_ports():
    # The orphaned driver outlives the killed server by its idle timeout, long enough for the
    # restarted server to listen while it still runs. A Redis of its own: the restarted server
    # takes over whatever its Redis holds.
    redis = Redis()
    server = HearthServer(redis.url, "--driver-idle-timeout", "20s", "--heartbeat-interval", "500ms")
    name = f"e2e-restart-{uuid.uuid4().hex[:8]}"
    try:
        r = server.post("/sessions", json={"kind": "pyspark", "name": name, "conf": FAST_CONF})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        wait_until(lambda: server.get(f"/sessions/{sid}/state").json()["state"] == "idle", 180, "idle")
        processes = driver_processes(name)
        assert processes
    finally:
        server.proc.kill()  # the server dies without stopping its driver
        server.stop()

    port = server.url.rsplit(":", 1)[1]
    client_port = server.client_address.rsplit(":", 1)[1]
    restarted = HearthServer(redis.url, "--port", port, "--client-port", client_port)
    try:
        assert restarted.url == server.url
        assert restarted.client_address == server.client_address
        # The driver still ran while the new server took the ports: it held none of them.
        assert any(process_state(p) not in (None, psutil.STATUS_ZOMBIE) for p in processes), \
            "the driver exited too early to tell"
        # And the new server takes it over (test_recovery.py has the details).
        wait_until(lambda: restarted.get(f"/sessions/{sid}/state").json()["state"] == "idle", 60,
                   "the session to be back")
        assert restarted.delete(f"/sessions/{sid}").status_code == 200
    finally:
        assert restarted.stop() == 0, restarted.output()
        redis.stop()
    gone, alive = psutil.wait_procs(processes, timeout=90)
    assert not alive, f"still running: {[(p.pid, process_name(p)) for p in alive]}"
