"""The client channel (protocol/PROTOCOL.md, "The client channel, version 1") as a client sees it:
handshake and errors, calls that answer exactly as REST, events with per-session sequence numbers,
part runs, uploads, slow and vanishing clients, reconnects and server restarts.

Sessions run on the scripted fake driver (tests/python/fake_driver_for_fault_injection.py): these
tests are about what the server does with a driver's messages, never about Spark.

One Redis and one server serve the module (a second pair only where a restart is the point). The
server's heartbeat is 500 ms, so a silent client is forgotten within about 2 s, and its send
high-water mark is 50 messages, so a client that stops reading is overrun after little traffic.
"""
import concurrent.futures
import contextlib
import hashlib
import json
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from client_channel import MAX_PART_BYTES, ChannelError, ClientChannel, encode, statement_done
from fake_driver_for_fault_injection import Trace, big_text, log_line, make_fake_spark_home
from hearth_harness import HearthServer, Redis, scoped_session, wait_until

HEARTBEAT_MS = 500
SEND_HWM = 50
MAX_REQUEST_MIB = 1  # uploads cross the limit after four parts


def server_args(spark_home):
    return ("--spark-home", spark_home, "--client-send-hwm", str(SEND_HWM),
            "--heartbeat-interval", f"{HEARTBEAT_MS}ms", "--max-request-mib", str(MAX_REQUEST_MIB),
            # Drivers of a killed server exit by themselves soon (the fake honours it too).
            "--driver-idle-timeout", "20s")


@pytest.fixture(scope="module")
def fake_spark(tmp_path_factory):
    spark_home, trace_dir = make_fake_spark_home(str(tmp_path_factory.mktemp("fake-spark")))
    trace = Trace(trace_dir)
    yield spark_home, trace
    # Drivers orphaned by a killed server (the restart test) are ended by their pid.
    for pid in trace.pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def channel_redis():
    # Its own Redis: a server starting on the suite's Redis would end the other suites' sessions.
    redis = Redis()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def hearth(channel_redis, fake_spark):
    """Named like the suite's fixture so a failing test's report carries this server's output."""
    server = HearthServer(channel_redis.url, *server_args(fake_spark[0]))
    assert server.client_address, server.output()
    yield server
    code = server.stop()
    assert code == 0, f"hearth-server did not stop cleanly (exit code {code}):\n{server.output()}"


@pytest.fixture(scope="module")
def shared_session(hearth):
    """One idle fake-driver session for tests that only add statements to it."""
    with scoped_session(hearth, {"kind": "pyspark"}) as session:
        session.wait_idle(timeout=30)
        yield session


@contextlib.contextmanager
def fresh_session(hearth):
    with scoped_session(hearth, {"kind": "pyspark"}) as session:
        session.wait_idle(timeout=30)
        yield session


@contextlib.contextmanager
def connected(hearth, **options):
    client = ClientChannel(hearth.client_address, **options)
    try:
        yield client
    finally:
        client.close()


def summary(events):
    """(seq, kind, state) of each event, for assertion messages."""
    return [(e.body["seq"], e.body["kind"], (e.body["body"] or {}).get("state")) for e in events]


def as_tuples(events):
    return [(e.body["session"], e.body["seq"], e.body["kind"], json.dumps(e.body["body"], sort_keys=True))
            for e in events]


def assert_consecutive(seqs, first=None):
    assert seqs, "no events"
    if first is not None:
        assert seqs[0] == first, seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def dedupe(items):
    out = []
    for item in items:
        if not out or out[-1] != item:
            out.append(item)
    return out


def submit(client, session_id, code):
    status, body = client.call("POST", f"/sessions/{session_id}/statements", {"code": code})
    assert status == 201, body
    return body["id"]


def atomic_write(path, text):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


# ---------------------------------------------------------------- handshake and bad frames

def test_hello_is_welcomed_with_the_channel_parameters_and_ping_is_answered(hearth):
    with connected(hearth, hello=False) as client:
        welcome = client.hello()
        assert set(welcome) == {"version", "server_id", "heartbeat_ms", "max_part_bytes"}
        assert welcome["version"] == 1
        assert isinstance(welcome["server_id"], str) and welcome["server_id"]
        assert welcome["heartbeat_ms"] == HEARTBEAT_MS
        assert welcome["max_part_bytes"] == 262144
        client.ping()
        pong = client.recv(timeout_s=10, swallow_pongs=False)
        assert pong is not None and pong.type == "pong", pong
        assert pong.body == {"server_id": welcome["server_id"]}


def test_a_call_before_hello_is_answered_hello_required_with_its_id(hearth):
    with connected(hearth, hello=False) as client:
        answer = client.request("call", {"method": "GET", "path": "/version"})
        assert answer.type == "error"
        assert answer.body["code"] == "hello_required"
        assert answer.body["id"] == 1
        assert answer.body["message"]
        client.hello()
        assert client.call("GET", "/version")[0] == 200


def test_hello_without_a_common_version_is_refused_and_leaves_the_client_unknown(hearth):
    with connected(hearth, hello=False) as client:
        client.send("hello", {"client": "from-the-future/9", "versions": [7]})
        answer = client.expect("error")
        assert answer.body["code"] == "unsupported_version", answer.body
        assert answer.body.get("id") is None
        assert answer.body["message"]
        after = client.request("call", {"method": "GET", "path": "/version"})
        assert after.type == "error" and after.body["code"] == "hello_required", after.body


@pytest.mark.parametrize("frames, expected_id", [
    ([b"this is not json"], None),
    ([b'{"v":1,"type":"call","body":{"id":5,"method":"GET"}}'], 5),            # no path
    ([b'{"v":1,"type":"call","body":{"id":6,"method":"PUT","path":"/x"}}'], 6),  # no such method
    ([b'{"v":1,"type":"call","body":{"id":7,"method":"GET","path":"/x","extra":1}}'], 7),
    ([b'{"v":2,"type":"ping","body":{}}'], None),                               # another version
    ([b'{"v":1,"type":"ping","body":{}}', b"data where none belongs"], None),
    ([b'{"v":1,"type":"upload","body":{"id":8,"upload":"u","name":"n","offset":0,"last":true}}'], 8),  # no data
    ([b'{"v":1,"type":"heartbeat","body":{}}'], None),                          # a driver-channel type
], ids=["not-json", "missing-field", "bad-method", "unknown-field", "wrong-version", "unexpected-data",
        "missing-data", "unknown-type"])
def test_undecodable_frames_are_answered_bad_frame_and_the_connection_survives(hearth, frames, expected_id):
    with connected(hearth) as client:
        client.send_frames(frames)
        answer = client.expect("error")
        assert answer.body["code"] == "bad_frame", answer.body
        assert answer.body.get("id") == expected_id, answer.body
        assert answer.body["message"]
        assert client.call("GET", "/version")[0] == 200


@pytest.mark.parametrize("message_type, body, data, expected_id", [
    ("welcome", {"version": 1, "server_id": "me", "heartbeat_ms": 1, "max_part_bytes": 1}, None, None),
    ("pong", {"server_id": "me"}, None, None),
    ("reply", {"id": 9, "status": 200, "body": None}, None, 9),
    ("event", {"session": 0, "seq": 1, "kind": "session", "body": {}}, None, None),
    ("part", {"ref": 1, "index": 0, "last": True}, b"{}", None),
    # An error's id names the request it answers; it is no request id of its own to echo.
    ("error", {"id": 4, "code": "bad_frame", "message": "x"}, None, None),
])
def test_server_only_messages_sent_by_a_client_are_bad_frame(hearth, message_type, body, data, expected_id):
    with connected(hearth) as client:
        client.send(message_type, body, data)
        answer = client.expect("error")
        assert answer.body["code"] == "bad_frame", answer.body
        assert answer.body.get("id") == expected_id, answer.body
        assert message_type in answer.body["message"]
        assert client.call("GET", "/version")[0] == 200


def test_a_silent_client_is_forgotten_after_three_heartbeats_and_can_say_hello_again(hearth):
    with connected(hearth, auto_ping=False) as client:
        server_id = client.welcome["server_id"]
        assert client.call("GET", "/version")[0] == 200
        # Silence on purpose: 6 heartbeats, twice the limit, while nothing may arrive either.
        assert client.recv(timeout_s=6 * HEARTBEAT_MS / 1000) is None
        client.ping()
        answer = client.recv(timeout_s=10, swallow_pongs=False)
        assert answer is not None and answer.type == "error", answer
        assert answer.body["code"] == "hello_required", answer.body
        assert client.hello()["server_id"] == server_id
        assert client.call("GET", "/version")[0] == 200


# ---------------------------------------------------------------- calls are REST

REST_COMPARISONS = [
    ("GET", "/version", None),
    ("GET", "/sessions?from=0&size=1", None),
    ("GET", "/sessions/{session}", None),
    ("GET", "/sessions/{session}/statements?from=0&size=2", None),
    ("POST", "/sessions", {"kind": "cobol"}),
    ("POST", "/sessions", {"kind": "pyspark", "colour": "blue"}),
    ("POST", "/sessions/{session}/statements", {"kind": "pyspark"}),
    ("GET", "/sessions/987654", None),
    ("GET", "/sessions/987654/statements/0", None),
    ("GET", "/no/such/thing", None),
    ("DELETE", "/drivers/no-such-driver", None),
    ("DELETE", "/sessions/987654", None),
]


@pytest.mark.parametrize("method, path, body", REST_COMPARISONS,
                         ids=[f"{m} {p}" + (" bad body" if b else "") for m, p, b in REST_COMPARISONS])
def test_calls_answer_exactly_as_rest(hearth, shared_session, method, path, body):
    path = path.format(session=shared_session.id)
    with connected(hearth) as client:
        sessions_before = hearth.get("/sessions").json()["total"]
        status, answer = client.call(method, path, body) if body is not None else client.call(method, path)
        response = requests.request(method, hearth.url + path, json=body, timeout=30)
        assert status == response.status_code, (answer, response.text)
        assert answer == (response.json() if response.content else None)
        assert hearth.get("/sessions").json()["total"] == sessions_before  # bad bodies create nothing


# ---------------------------------------------------------------- events

def test_a_session_lifecycle_arrives_as_events_numbered_one_by_one(hearth, tmp_path):
    release = str(tmp_path / "release")
    with connected(hearth) as client:
        assert client.subscribe() == (200, {"session": None, "seq": 0})
        status, created = client.call("POST", "/sessions", {"kind": "pyspark"})
        assert status == 201, created
        session_id = created["id"]
        try:
            events = client.events_until(
                lambda e: e.body["kind"] == "session" and e.body["body"]["state"] in ("idle", "error", "dead"),
                session=session_id)
            assert events[-1].body["body"]["state"] == "idle", summary(events)
            assert dedupe([e.body["body"]["state"] for e in events]) == ["starting", "idle"], summary(events)
            assert all(e.body["body"]["id"] == session_id for e in events)

            statement_id = submit(client, session_id, f"wait {release}")
            events += client.events_until(
                lambda e: e.body["kind"] == "statement" and e.body["body"]["state"] == "running", session=session_id)
            atomic_write(release, "released")
            events += client.events_until(statement_done(session_id, statement_id), session=session_id)
            events += client.events_until(
                lambda e: e.body["kind"] == "session" and e.body["body"]["state"] == "idle", session=session_id)

            assert_consecutive([e.body["seq"] for e in events], first=1)
            statement_states = [e.body["body"]["state"] for e in events if e.body["kind"] == "statement"]
            assert statement_states[0] in ("waiting", "running"), summary(events)
            assert dedupe(statement_states) in (["waiting", "running", "available"], ["running", "available"])
            session_states = dedupe([e.body["body"]["state"] for e in events if e.body["kind"] == "session"])
            assert session_states == ["starting", "idle", "busy", "idle"], summary(events)
            final = [e for e in events if e.body["kind"] == "statement"][-1].body["body"]
            assert final["output"] == {"status": "ok", "execution_count": statement_id,
                                       "data": {"text/plain": "released"}}
            assert final["progress"] == 1.0 and final["completed"] >= final["started"] > 0
            # The event's body is the statement as REST shows it.
            assert client.call("GET", f"/sessions/{session_id}/statements/{statement_id}") == (200, final)
            assert hearth.get(f"/sessions/{session_id}/statements/{statement_id}").json() == final
        finally:
            assert client.call("DELETE", f"/sessions/{session_id}")[0] == 200


def test_many_concurrent_subscribers_see_the_same_ordered_events(hearth):
    subscribers = 16
    with fresh_session(hearth) as session, connected(hearth) as producer:
        status, body = producer.subscribe(session.id)
        assert status == 200, body
        before = body["seq"]
        assert producer.unsubscribe(session.id)[0] == 200
        # Replays stay below the send high-water mark here: see the replay test below.
        statements = [submit(producer, session.id, "progress 10 10") for _ in range(3)]
        statements.append(submit(producer, session.id, "echo the end"))
        last = statements[-1]

        def follow(index):
            # Each thread owns its client; they subscribe while the statements run.
            with connected(hearth, name=f"subscriber-{index}") as client:
                status, body = client.subscribe(session.id, since=before)
                assert status == 200 and body["session"] == session.id, body
                events = client.events_until(statement_done(session.id, last), timeout_s=30, session=session.id)
                assert client.broken_part_runs == 0
                return events

        with concurrent.futures.ThreadPoolExecutor(max_workers=subscribers) as pool:
            seen = list(pool.map(follow, range(subscribers), timeout=60))

        reference = as_tuples(seen[0])
        assert_consecutive([e.body["seq"] for e in seen[0]], first=before + 1)
        for events in seen[1:]:
            assert as_tuples(events) == reference
        finals = {}
        for event in seen[0]:
            if event.body["kind"] == "statement":
                finals[event.body["body"]["id"]] = event.body["body"]
        assert sorted(finals) == statements
        for statement_id in statements:
            assert finals[statement_id]["state"] == "available"
            assert finals[statement_id] == hearth.get(f"/sessions/{session.id}/statements/{statement_id}").json()
        assert finals[last]["output"]["data"] == {"text/plain": "the end"}


def test_a_big_result_arrives_as_part_runs_and_reassembles(hearth, shared_session):
    size = 1_000_000
    with connected(hearth) as client:
        assert client.subscribe(shared_session.id)[0] == 200
        statement_id = submit(client, shared_session.id, f"big {size}")
        event = client.events_until(statement_done(shared_session.id, statement_id), session=shared_session.id)[-1]
        assert event.parted, "a 1 MB event must come as a part run"
        assert event.body["body"]["output"]["data"]["text/plain"] == big_text(size)

        answer = client.request("call", {"method": "GET",
                                         "path": f"/sessions/{shared_session.id}/statements/{statement_id}"})
        assert answer.type == "reply" and answer.parted, answer.type
        assert answer.body["status"] == 200
        assert answer.body["body"] == event.body["body"]
        assert client.largest_frame <= MAX_PART_BYTES
        assert client.broken_part_runs == 0


def test_log_lines_are_live_events_with_seq_zero_and_never_replayed(hearth, shared_session):
    with connected(hearth) as client:
        assert client.subscribe(shared_session.id)[0] == 200
        statement_id = submit(client, shared_session.id, "lines 5")
        expected = [log_line(shared_session.id, statement_id, i) for i in range(5)]
        lines = []
        finished = statement_done(shared_session.id, statement_id)
        final = []

        # The lines come from the driver's stdout, the final result over the driver channel:
        # either may arrive first.
        def lines_and_result_seen(event):
            if event.body["kind"] == "log":
                assert event.body["seq"] == 0
                assert set(event.body["body"]) == {"lines"}
                lines.extend(event.body["body"]["lines"])
            elif finished(event):
                final.append(event)
            return final and all(line in lines for line in expected)

        events = client.events_until(lines_and_result_seen, session=shared_session.id)
        ours = [line for line in lines if line.startswith("fake-driver log line")]
        assert ours == expected
        seen = [e for e in events if e.body["kind"] != "log"]

    with connected(hearth) as late:
        status, body = late.subscribe(shared_session.id, since=0)
        assert status == 200 and body["seq"] >= final[0].body["seq"], (body, summary(seen))
        replayed = late.events_until(lambda e: e.body["seq"] == body["seq"], session=shared_session.id)
        assert [e for e in replayed if e.body["kind"] == "log"] == []
        assert_consecutive([e.body["seq"] for e in replayed])


# ---------------------------------------------------------------- uploads

def test_an_upload_in_parts_reaches_the_driver_byte_for_byte(hearth, shared_session, fake_spark):
    data = os.urandom(700_000)
    with connected(hearth) as client:
        first = data[:MAX_PART_BYTES]
        assert client.upload_part("jar-1", "etl-1.2.jar", 0, first, False) == (
            200, {"upload": "jar-1", "bytes": len(first)})
        # A part that does not follow the previous one is refused and changes nothing.
        status, body = client.upload_part("jar-1", "etl-1.2.jar", 100, data[100:200], False)
        assert status == 400 and "offset" in body["msg"], body
        status, body = client.call("POST", f"/sessions/{shared_session.id}/upload-jar", upload="jar-1")
        assert status == 400 and "jar-1" in body["msg"], body  # not finished yet
        second = data[MAX_PART_BYTES:2 * MAX_PART_BYTES]
        assert client.upload_part("jar-1", "etl-1.2.jar", MAX_PART_BYTES, second, False)[0] == 200
        assert client.upload_part("jar-1", "etl-1.2.jar", 2 * MAX_PART_BYTES, data[2 * MAX_PART_BYTES:], True) == (
            200, {"upload": "jar-1", "bytes": len(data)})

        status, body = client.call("POST", f"/sessions/{shared_session.id}/upload-jar", upload="jar-1")
        assert (status, body) == (200, None)
        # Used once, then forgotten.
        status, body = client.call("POST", f"/sessions/{shared_session.id}/upload-jar", upload="jar-1")
        assert status == 400, body

    _, trace = fake_spark
    added = wait_until(lambda: [r for r in trace.received("add_artifact")
                                if r["received"]["body"]["session_id"] == shared_session.id], 10,
                       "the driver to get add_artifact")
    assert len(added) == 1, added
    body = added[0]["received"]["body"]
    assert body["kind"] == "jar"
    assert body["uri"].startswith("file:") and body["uri"].endswith("/etl-1.2.jar"), body["uri"]
    assert added[0]["artifact"] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_upload_limits_answer_400_and_413(hearth, shared_session):
    part = b"p" * MAX_PART_BYTES
    with connected(hearth) as client:
        for name in ("a", "b", "c", "d"):
            assert client.upload_part(name, name + ".py", 0, b"x", False)[0] == 200
        status, body = client.upload_part("e", "e.py", 0, b"x", False)
        assert status == 400 and "too many unfinished uploads" in body["msg"], body
        assert client.upload_part("a", "a.py", 0, b"restart", False)[0] == 200  # restarting one is fine

    limit = MAX_REQUEST_MIB << 20
    with connected(hearth) as client:
        offset = 0
        while offset + len(part) <= limit:
            assert client.upload_part("huge", "huge.jar", offset, part, False)[0] == 200
            offset += len(part)
        status, body = client.upload_part("huge", "huge.jar", offset, part, True)
        assert status == 413, body
        assert str(limit) in body["msg"]
        # The upload was dropped: it neither continues nor can be used.
        assert client.upload_part("huge", "huge.jar", offset, b"x", True)[0] == 400
        status, body = client.call("POST", f"/sessions/{shared_session.id}/upload-jar", upload="huge")
        assert status == 400, body


def test_finished_uploads_do_not_count_against_the_unfinished_limit(hearth):
    # PROTOCOL.md: "a client may have at most 4 unfinished uploads".
    with connected(hearth) as client:
        assert client.upload_part("done", "done.py", 0, b"print(1)\n", True)[0] == 200
        for name in ("a", "b", "c", "d"):
            status, body = client.upload_part(name, name + ".py", 0, b"x", False)
            assert status == 200, (name, body)
        status, body = client.upload_part("e", "e.py", 0, b"x", False)
        assert status == 400, body


# ---------------------------------------------------------------- slow, vanishing and returning clients

def test_a_replay_longer_than_the_send_high_water_mark_reaches_a_reading_client(hearth):
    # PROTOCOL.md: overrun is for a client that stopped reading; a client that reads is owed the
    # whole replay of `since`, however many events the session stored (up to 1000).
    with fresh_session(hearth) as session:
        with connected(hearth, name="producer") as producer:
            assert producer.subscribe(session.id)[0] == 200
            while True:
                statement_id = submit(producer, session.id, "progress 60 1")
                producer.events_until(statement_done(session.id, statement_id), session=session.id)
                stored = producer.subscribe(session.id)[1]["seq"]
                if stored > 6 * SEND_HWM:
                    break
        with connected(hearth, name="late-reader") as reader:
            status, body = reader.subscribe(session.id, since=0)
            assert status == 200 and body["seq"] >= stored, body
            try:
                replayed = reader.events_until(lambda e: e.body["seq"] == body["seq"], timeout_s=5,
                                               session=session.id)
            except ChannelError as e:
                raise AssertionError(f"a replay of {body['seq']} events did not reach a client that reads "
                                     f"(send high-water mark {SEND_HWM}); it got {reader.others}") from e
            assert_consecutive([e.body["seq"] for e in replayed], first=1)
            assert [m.body for m in reader.others if m.type == "error"] == []


def test_a_slow_reader_is_overrun_without_holding_up_others_and_catches_up_with_since(hearth):
    padding = "\n#" + "x" * 30_000  # every statement event carries the code: 30 KB events
    with fresh_session(hearth) as session, connected(hearth, name="fast-all") as fast_all, \
            connected(hearth, name="fast-one") as fast_one, \
            connected(hearth, name="slow", rcvhwm=1, rcvbuf=4096, auto_ping=False) as slow:
        assert fast_all.subscribe()[0] == 200
        assert fast_one.subscribe(session.id)[0] == 200
        assert slow.subscribe()[0] == 200

        submitted = time.monotonic()
        statements = [submit(fast_all, session.id, "progress 200" + padding) for _ in range(4)]
        done = statement_done(session.id, statements[-1])
        seen = {fast_all: [], fast_one: []}
        finished = {}
        deadline = submitted + 30
        while len(finished) < 2:
            assert time.monotonic() < deadline, f"fast clients stalled: {[summary(v)[-3:] for v in seen.values()]}"
            for client in (fast_all, fast_one):
                if client in finished:
                    continue
                message = client.recv(timeout_s=0.05)
                if message is not None and message.type == "event" and message.body["session"] == session.id:
                    seen[client].append(message)
                    if done(message):
                        finished[client] = time.monotonic()
            # The slow client reads nothing but stays alive, as PROTOCOL.md asks of every client.
            if time.monotonic() - slow.last_sent >= slow.heartbeat_s / 2:
                slow.ping()
        for client, at in finished.items():
            assert at - submitted < 20, "a fast client waited for the slow one"
        assert as_tuples(seen[fast_all]) == as_tuples(seen[fast_one])
        reference = seen[fast_one]
        assert_consecutive([e.body["seq"] for e in reference])

        # The slow client reads again: what was queued for it (nothing is added once it is
        # overrun, so a short quiet spell means the queue is empty), then the answer to a ping.
        handled, overrun_errors = [], []
        while True:
            message = slow.recv(timeout_s=0.3, swallow_pongs=False)
            if message is None:
                break
            if message.type == "event" and message.body["session"] == session.id:
                handled.append(message)
            elif message.type == "error":
                overrun_errors.append(message.body)
        slow.ping()
        while True:
            message = slow.recv(timeout_s=10, swallow_pongs=False)
            assert message is not None, "no answer to a ping"
            if message.type == "error":
                overrun_errors.append(message.body)
            if message.type == "pong":
                break
        assert handled, "the slow client got nothing before it was overrun"
        assert_consecutive([e.body["seq"] for e in handled], first=reference[0].body["seq"])
        assert not done(handled[-1]), "the slow client was not overrun: make the test produce more"
        assert slow.broken_part_runs == 0

        # It resubscribes with the last seq it handled and misses nothing.
        status, body = slow.subscribe(session.id, since=handled[-1].body["seq"])
        assert status == 200, body
        replayed = slow.events_until(done, timeout_s=20, session=session.id)
        assert as_tuples(handled + replayed) == as_tuples(reference)
        assert [e["code"] for e in overrun_errors] == ["overrun"], (
            f"a client that kept pinging while it did not read was never told it was overrun: "
            f"errors it got: {overrun_errors}")


def test_a_client_leaving_mid_stream_leaves_the_others_undisturbed(hearth):
    with fresh_session(hearth) as session, connected(hearth, name="stays") as stays:
        leaves = ClientChannel(hearth.client_address, name="leaves")
        try:
            assert stays.subscribe(session.id)[0] == 200
            assert leaves.subscribe(session.id)[0] == 200
            statement_id = submit(stays, session.id, "progress 30 10")
            done = statement_done(session.id, statement_id)
            handled = leaves.events_until(
                lambda e: e.body["kind"] == "statement" and e.body["body"]["state"] == "running"
                and e.body["body"]["progress"] > 0, session=session.id)
        finally:
            leaves.close()  # mid-stream: the statement still reports progress
        reference = stays.events_until(done, session=session.id)
        assert_consecutive([e.body["seq"] for e in reference])
        status, body = stays.call("GET", f"/sessions/{session.id}/state")
        assert status == 200 and body["state"] in ("busy", "idle"), body

        with connected(hearth, name="returns") as returns:
            assert returns.subscribe(session.id, since=handled[-1].body["seq"])[0] == 200
            rest = returns.events_until(done, session=session.id)
        assert as_tuples(handled + rest) == as_tuples(reference)


def test_a_client_returning_after_a_statement_finished_gets_its_final_result(hearth, tmp_path):
    release = str(tmp_path / "release")
    with fresh_session(hearth) as session:
        with connected(hearth, name="before") as before:
            assert before.subscribe(session.id)[0] == 200
            statement_id = submit(before, session.id, f"wait {release}")
            handled = before.events_until(
                lambda e: e.body["kind"] == "statement" and e.body["body"]["state"] == "running", session=session.id)
        atomic_write(release, "finished while you were away")
        session.wait_statement(statement_id, timeout=20)

        with connected(hearth, name="after") as after:
            status, body = after.subscribe(session.id, since=handled[-1].body["seq"])
            assert status == 200 and body["seq"] > handled[-1].body["seq"], body
            missed = after.events_until(statement_done(session.id, statement_id), session=session.id)
        assert_consecutive([e.body["seq"] for e in handled + missed])
        final = missed[-1].body["body"]
        assert final["state"] == "available"
        assert final["output"]["data"] == {"text/plain": "finished while you were away"}


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_after_a_server_restart_since_replays_stored_events_and_seq_keeps_counting(fake_spark, stop):
    spark_home, _ = fake_spark
    redis = Redis()
    servers = []
    try:
        first = HearthServer(redis.url, *server_args(spark_home))
        servers.append(first)
        with connected(first) as client:
            old_server_id = client.welcome["server_id"]
            status, created = client.call("POST", "/sessions", {"kind": "pyspark"})
            assert status == 201, created
            session_id = created["id"]
            assert client.subscribe(session_id, since=0)[0] == 200
            client.events_until(lambda e: e.body["kind"] == "session" and e.body["body"]["state"] == "idle")
            statement_id = submit(client, session_id, "echo before the restart")
            before = client.events_until(statement_done(session_id, statement_id))
            before += client.events_until(
                lambda e: e.body["kind"] == "session" and e.body["body"]["state"] == "idle")
            last_seq = before[-1].body["seq"]

        if stop == "sigkill":
            first.proc.kill()  # a crash: nothing is stopped in order
            first.proc.wait()
        first.stop()

        second = HearthServer(redis.url, *server_args(spark_home))
        servers.append(second)
        with connected(second) as client:
            assert client.welcome["server_id"] != old_server_id
            status, body = client.subscribe(session_id, since=last_seq)
            assert status == 200, body
            # SIGTERM (the suite's servers stop their drivers) ends the session; after a SIGKILL
            # the driver runs on: the session is recovering until it is back, then idle again.
            end = "dead" if stop == "sigterm" else "idle"
            assert second.get(f"/sessions/{session_id}").json()["state"] in (
                ["dead"] if stop == "sigterm" else ["recovering", "idle"])
            # Every change is an event (PROTOCOL.md), the session's end included, however it ended.
            assert body["seq"] > last_seq, (
                f"the session changed but no event says so: the last stored seq is still {body['seq']}")
            after = client.events_until(
                lambda e: e.body["kind"] == "session" and e.body["body"]["state"] == end, timeout_s=30)
            assert_consecutive([e.body["seq"] for e in after], first=last_seq + 1)
            if stop == "sigkill":
                states = [e.body["body"]["state"] for e in after if e.body["kind"] == "session"]
                assert states[0] == "recovering", states

        with connected(second) as replay:
            status, body = replay.subscribe(session_id, since=0)
            assert status == 200 and body["seq"] == after[-1].body["seq"], body
            everything = replay.events_until(lambda e: e.body["seq"] == body["seq"])
            assert_consecutive([e.body["seq"] for e in everything], first=1)
            stored_before = [e for e in everything if e.body["seq"] <= last_seq]
            assert as_tuples(stored_before)[-len(before):] == as_tuples(before)
    finally:
        for server in servers:
            server.stop()
        redis.stop()
