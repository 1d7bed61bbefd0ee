"""A small raw client of hearth-server's client channel (protocol/PROTOCOL.md, "The client channel,
version 1") for tests: one pyzmq DEALER, owned by the thread that made it.

It hides nothing a test may want to see: every message comes back as a Message (type, body,
whether it arrived as a `part` run). It reassembles `part` runs, keeps the messages that arrive
while it waits for a reply (events, pongs, errors) for later reads, and sends `ping` while it waits
so the server does not forget it. Every wait has a deadline; nothing sleeps.
"""
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field

import zmq

VERSION = 1
MAX_PART_BYTES = 262144
_CONTEXT = zmq.Context.instance()
_NO_BODY = object()


class ChannelError(AssertionError):
    """An answer the test did not expect (an `error` where a reply was due, a timeout)."""


@dataclass
class Message:
    type: str
    body: object
    data: bytes = None
    parted: bool = False  # arrived as a run of `part` messages
    received_at: float = field(default_factory=time.monotonic)


def encode(message_type, body):
    return json.dumps({"v": VERSION, "type": message_type, "body": body}, separators=(",", ":")).encode()


class ClientChannel:
    """One connection. `address` is "HOST:PORT". Socket options (rcvhwm, rcvbuf) let a test make
    a client that stops reading look full to the server quickly."""

    def __init__(self, address, name="hearth-component-test/0", user=None, hello=True, rcvhwm=None,
                 rcvbuf=None, auto_ping=True):
        self.address = address
        self.name = name
        self.user = user
        self.socket = _CONTEXT.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if rcvhwm is not None:
            self.socket.setsockopt(zmq.RCVHWM, rcvhwm)
        if rcvbuf is not None:
            self.socket.setsockopt(zmq.RCVBUF, rcvbuf)
        self.socket.connect("tcp://" + address)
        self.ids = itertools.count(1)
        self.inbox = deque()           # whole messages read but not yet handed out
        self.runs = {}                 # ref -> list of data frames of an unfinished part run
        self.broken_part_runs = 0      # runs another run interrupted (must stay 0)
        self.largest_frame = 0         # of every frame received
        self.recent = deque(maxlen=40) # (type, id or seq) of the last messages received, pongs too
        self.welcome = None
        self.heartbeat_s = 2.0
        self.auto_ping = auto_ping
        self.last_sent = time.monotonic()
        self.others = []               # non-event messages events_until() passed over
        self.closed = False
        if hello:
            self.hello()

    # ---- sending ----
    def send(self, message_type, body, data=None):
        frames = [encode(message_type, body)]
        if data is not None:
            frames.append(data)
        self.send_frames(frames)

    def send_frames(self, frames):
        """Sends raw frames (for negative tests: anything, decodable or not)."""
        self.socket.send_multipart(frames)
        self.last_sent = time.monotonic()

    def ping(self):
        self.send("ping", {})

    # ---- receiving ----
    def _read_socket(self, timeout_s):
        """Reads one whole message from the socket (reassembling part runs) within timeout_s;
        None if none came. Sends pings while it waits, if auto_ping."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            if self.auto_ping and self.welcome and now - self.last_sent >= self.heartbeat_s / 2:
                self.ping()
            wait_s = deadline - now
            if self.auto_ping and self.welcome:
                wait_s = min(wait_s, self.heartbeat_s / 2)
            if wait_s < 0:
                return None
            if not self.socket.poll(int(wait_s * 1000) + 1, zmq.POLLIN):
                if time.monotonic() >= deadline:
                    return None
                continue
            frames = self.socket.recv_multipart()
            self.largest_frame = max([self.largest_frame] + [len(f) for f in frames])
            message = self._decode(frames)
            if message is not None:
                body = message.body if isinstance(message.body, dict) else {}
                self.recent.append((message.type, body.get("id", body.get("seq"))))
                return message

    def _decode(self, frames):
        header = json.loads(frames[0])
        assert header.get("v") == VERSION, header
        if header["type"] != "part":
            return Message(header["type"], header["body"], frames[1] if len(frames) > 1 else None)
        body = header["body"]
        assert len(frames) == 2, "a part without its data frame"
        ref = body["ref"]
        for other in list(self.runs):
            if other != ref:  # parts of different messages must not interleave
                del self.runs[other]
                self.broken_part_runs += 1
        run = self.runs.setdefault(ref, [])
        assert body["index"] == len(run), f"part {body['index']} of ref {ref} after {len(run)} parts"
        run.append(frames[1])
        if not body["last"]:
            return None
        del self.runs[ref]
        whole = self._decode([b"".join(run)])
        whole.parted = True
        return whole

    def recv(self, timeout_s=10.0, swallow_pongs=True):
        """The next message (from the inbox first); None when none came within timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.inbox:
                message = self.inbox.popleft()
            else:
                message = self._read_socket(max(0.0, deadline - time.monotonic()))
                if message is None:
                    return None
            if swallow_pongs and message.type == "pong":
                continue
            return message

    def expect(self, message_type, timeout_s=10.0):
        """The next message, which must be of message_type (pongs aside)."""
        message = self.recv(timeout_s)
        if message is None:
            raise ChannelError(f"no {message_type} within {timeout_s}s")
        if message.type != message_type:
            raise ChannelError(f"expected {message_type}, got {message.type} {message.body}")
        return message

    def request(self, message_type, body, data=None, timeout_s=15.0):
        """Sends a request with a fresh correlation id and returns its answer (a `reply` or an
        `error` Message carrying that id). Other messages read meanwhile stay in the inbox, in
        order, for later recv()."""
        body = dict(body)
        body["id"] = next(self.ids)
        self.send(message_type, body, data)
        deadline = time.monotonic() + timeout_s
        kept = []
        try:
            while True:
                message = self._read_socket(max(0.0, deadline - time.monotonic()))
                if message is None:
                    raise ChannelError(f"no answer to {message_type} {body} within {timeout_s}s")
                if message.type in ("reply", "error") and message.body.get("id") == body["id"]:
                    return message
                kept.append(message)
        finally:
            self.inbox.extend(kept)

    def reply(self, message_type, body, data=None, timeout_s=15.0):
        """request() that must be answered by a reply; returns (status, body, Message)."""
        answer = self.request(message_type, body, data, timeout_s)
        if answer.type != "reply":
            raise ChannelError(f"{message_type} {body} was answered {answer.type} {answer.body}")
        return answer.body["status"], answer.body["body"], answer

    # ---- the protocol's operations ----
    def hello(self, versions=(1,), timeout_s=15.0):
        body = {"client": self.name, "versions": list(versions)}
        if self.user is not None:
            body["user"] = self.user
        self.send("hello", body)
        while True:
            message = self.recv(timeout_s)
            if message is None:
                raise ChannelError("no welcome")
            if message.type == "welcome":
                self.welcome = message.body
                self.heartbeat_s = message.body["heartbeat_ms"] / 1000.0
                return message.body
            if message.type == "error":
                raise ChannelError(f"hello answered with error {message.body}")
            # anything else (an event of an earlier connection of this socket) is dropped

    def call(self, method, path, body=_NO_BODY, upload=None, timeout_s=15.0):
        """An operation of the REST API; returns (status, body)."""
        request = {"method": method, "path": path}
        if body is not _NO_BODY:
            request["body"] = body
        if upload is not None:
            request["upload"] = upload
        status, answer, _ = self.reply("call", request, timeout_s=timeout_s)
        return status, answer

    def upload_part(self, upload, name, offset, data, last):
        status, body, _ = self.reply("upload", {"upload": upload, "name": name, "offset": offset, "last": last},
                                     data=data)
        return status, body

    def upload_file(self, upload, name, data, part_bytes=MAX_PART_BYTES):
        """Uploads data in parts; returns the last part's (status, body)."""
        offset = 0
        while True:
            chunk = data[offset:offset + part_bytes]
            last = offset + len(chunk) >= len(data)
            status, body = self.upload_part(upload, name, offset, chunk, last)
            if status != 200 or last:
                return status, body
            offset += len(chunk)

    def subscribe(self, session=None, since=None):
        body = {}
        if session is not None:
            body["session"] = session
        if since is not None:
            body["since"] = since
        status, answer, _ = self.reply("subscribe", body)
        return status, answer

    def unsubscribe(self, session=None):
        status, answer, _ = self.reply("unsubscribe", {} if session is None else {"session": session})
        return status, answer

    def events_until(self, done, timeout_s=20.0, session=None):
        """Reads events (of `session`, if given) until done(event_message) is true for one; returns
        them all, that one last. Other messages are kept in `self.others`. Fails at the deadline."""
        deadline = time.monotonic() + timeout_s
        events = []
        while True:
            message = self.recv(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise ChannelError(f"timed out after {timeout_s}s; events so far: "
                                   f"{[(e.body['seq'], e.body['kind'], _state(e)) for e in events]}; "
                                   f"other messages: {[(m.type, m.body) for m in self.others]}; "
                                   f"last received: {list(self.recent)}")
            if message.type != "event":
                self.others.append(message)
                continue
            if session is not None and message.body["session"] != session:
                continue
            events.append(message)
            if done(message):
                return events

    def close(self):
        if not self.closed:
            self.closed = True
            self.socket.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _state(event):
    body = event.body.get("body")
    return body.get("state") if isinstance(body, dict) else None


def statement_done(session, statement_id, states=("available", "cancelled")):
    """A predicate for events_until: the final event of one statement."""
    def done(event):
        body = event.body
        return (body["session"] == session and body["kind"] == "statement" and
                body["body"]["id"] == statement_id and body["body"]["state"] in states)
    return done
