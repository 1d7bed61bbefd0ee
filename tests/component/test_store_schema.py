"""The schema key (hearth:schema) a hearth-server checks before it touches Redis: a new database
gets it, a database of the release before it is adopted, and a database of another schema
version is refused at once with a message saying what to do. Each test has a Redis of its own,
so the suite's shared one (and the records other tests keep there) is never touched."""
import json
import subprocess

import pytest

from hearth_harness import HearthServer, Redis, run_server_until_exit


@pytest.fixture
def fresh_redis():
    redis = Redis()
    yield redis
    redis.stop()


def redis_cli(redis, *args):
    out = subprocess.run(["redis-cli", "-s", redis.socket, "--raw", *args],
                         capture_output=True, text=True, check=True)
    return out.stdout.rstrip("\n")


def all_keys(redis):
    return set(filter(None, redis_cli(redis, "KEYS", "*").split("\n")))


def snapshot(redis):
    """Every key with its value (Hearth keeps strings and sorted sets only)."""
    values = {}
    for key in all_keys(redis):
        if redis_cli(redis, "TYPE", key) == "zset":
            values[key] = redis_cli(redis, "ZRANGE", key, "0", "-1", "WITHSCORES")
        else:
            values[key] = redis_cli(redis, "GET", key)
    return values


def session_json(session_id, state):
    """A version-1 session record as the release before the schema key wrote it."""
    return json.dumps({
        "version": 1, "id": session_id, "owner": None, "state": state, "app_id": None,
        "spark_ui_url": None, "driver_id": "", "created_ms": 1716200000000,
        "request": {"kind": "pyspark", "jars": [], "py_files": [], "files": [], "archives": [],
                    "conf": {}, "heartbeat_timeout_s": 0}})


def test_a_new_redis_gets_the_schema_key(fresh_redis):
    server = HearthServer(fresh_redis.url)
    try:
        assert fresh_redis.get("hearth:schema") == "1"
        assert server.get("/sessions").json()["sessions"] == []
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize("found, told", [
    ("2", "holds Hearth schema version 2 (hearth:schema); this hearth-server speaks 1: "
          "upgrade hearth-server or point it at another Redis database"),
    ("0", "holds Hearth schema version 0 (hearth:schema), older than this hearth-server reads"),
    ("two", 'holds "two" under hearth:schema, which is no Hearth schema version'),
], ids=["newer", "older", "no-version"])
def test_a_redis_of_another_schema_is_refused_at_once_and_left_untouched(fresh_redis, found, told):
    # What a server of that schema would have left there, under its own prefix.
    redis_cli(fresh_redis, "SET", "hearth:schema", found)
    redis_cli(fresh_redis, "SET", "hearth:v2:session:0", '{"version":2}')
    redis_cli(fresh_redis, "ZADD", "hearth:v2:sessions", "0", "0")
    before = snapshot(fresh_redis)

    # The refusal comes at once: a server that starts, or waits for something, fails here.
    code, output = run_server_until_exit(fresh_redis.url, timeout=15)
    assert code != 0, output
    assert f"hearth-server: Redis {fresh_redis.url} {told}" in output, output
    assert "listening on" not in output
    assert snapshot(fresh_redis) == before


def test_a_redis_of_the_release_before_the_schema_key_is_adopted(fresh_redis):
    old_secret = "0123456789abcdef" * 4
    redis_cli(fresh_redis, "SET", "hearth:v1:counter:session", "5")
    redis_cli(fresh_redis, "SET", "hearth:v1:session:4", session_json(4, "dead"))
    redis_cli(fresh_redis, "ZADD", "hearth:v1:sessions", "4", "4")
    redis_cli(fresh_redis, "SET", "hearth:v1:driver:drv-old", json.dumps({
        "version": 1, "id": "drv-old", "secret": old_secret, "pid": 1, "created_ms": 1,
        "user": None, "share_level": "session", "pooled": False, "state": "ready",
        "app_id": None, "spark_ui_url": None, "last_used_ms": 1,
        "profile": {"conf": {}}}))
    redis_cli(fresh_redis, "ZADD", "hearth:v1:drivers", "1", "drv-old")

    server = HearthServer(fresh_redis.url)
    try:
        assert fresh_redis.get("hearth:schema") == "1"
        assert f"Redis {fresh_redis.url} has Hearth records but no hearth:schema: adopting them " \
               "as schema version 1" in server.output()
        sessions = server.get("/sessions").json()["sessions"]
        assert [(s["id"], s["state"]) for s in sessions] == [(4, "dead")]
        # Nothing of the old server's is lost, and no secret is left in the clear.
        assert fresh_redis.get("hearth:v1:counter:session") == "5"
        assert all(old_secret not in value for value in snapshot(fresh_redis).values())
    finally:
        assert server.stop() == 0, server.output()
