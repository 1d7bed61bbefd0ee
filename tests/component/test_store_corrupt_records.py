"""A corrupt record in Redis is skipped with a log line naming its key; it never stops the
server from starting or from listing the sessions it can read. The Redis is one of this
module's own, so the garbage never reaches the suite's shared one."""
import json
import subprocess

import pytest

from hearth_harness import HearthServer, Redis


@pytest.fixture
def corrupt_redis():
    redis = Redis()
    yield redis
    redis.stop()


def redis_cli(redis, *args):
    subprocess.run(["redis-cli", "-s", redis.socket, *args], capture_output=True, check=True)


def session_json(session_id, version=1):
    return json.dumps({
        "version": version, "id": session_id, "owner": None, "state": "dead", "app_id": None,
        "spark_ui_url": None, "driver_id": "", "created_ms": 1716200000000,
        "request": {"kind": "pyspark", "jars": [], "py_files": [], "files": [], "archives": [],
                    "conf": {}, "heartbeat_timeout_s": 0}})


def test_corrupt_records_are_skipped_and_named_and_the_server_starts(corrupt_redis):
    redis_cli(corrupt_redis, "SET", "hearth:schema", "1")
    redis_cli(corrupt_redis, "SET", "hearth:v1:counter:session", "9")
    redis_cli(corrupt_redis, "SET", "hearth:v1:session:3", session_json(3))
    redis_cli(corrupt_redis, "SET", "hearth:v1:session:7", "\x01 this is not JSON {")
    # Valid-looking, but of a record version this server does not read.
    redis_cli(corrupt_redis, "SET", "hearth:v1:session:8", session_json(8, version=2))
    redis_cli(corrupt_redis, "SET", "hearth:v1:driver:drv-bad", '{"version":1,"id":"drv-bad"}')
    for member in ("3", "7", "8"):
        redis_cli(corrupt_redis, "ZADD", "hearth:v1:sessions", member, member)
    redis_cli(corrupt_redis, "ZADD", "hearth:v1:drivers", "1", "drv-bad")

    server = HearthServer(corrupt_redis.url)
    try:
        listed = server.get("/sessions")
        assert listed.status_code == 200, listed.text
        assert [s["id"] for s in listed.json()["sessions"]] == [3]
        output = server.output()
        for key in ("hearth:v1:session:7", "hearth:v1:session:8", "hearth:v1:driver:drv-bad"):
            assert any("skipping unreadable record" in line and key + ":" in line
                       for line in server.lines), f"no log line names {key}:\n{output}"
        assert "unsupported record version 2" in output
        # The readable session is still served as a resource of its own.
        assert server.get("/sessions/3").status_code == 200
    finally:
        assert server.stop() == 0, server.output()
