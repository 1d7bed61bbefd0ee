"""Hearth's Python worker: one process per pyspark session, started by the driver agent.

Attaches to the driver JVM through py4j (PYSPARK_GATEWAY_PORT / PYSPARK_GATEWAY_SECRET), binds
`spark`, `sc` and `sqlContext` in one persistent namespace, then answers requests.

Protocol, one JSON object per line each way; the first line the worker writes is
{"op": "ready"}. Requests on stdin:

  {"op": "execute", "statement_id": N, "code": "...", "job_group": "...", "pool": "..."}
      -> {"op": "execute", "output": <Livy's output object>}   (user output is captured)
  {"op": "cancel", "statement_id": N}
      -> no answer; interrupts statement N if it is the one running (KeyboardInterrupt)
  {"op": "complete", "id": K, "code": "...", "cursor": C}
      -> {"op": "complete", "id": K, "candidates": [...]}

Threads: a reader thread reads stdin and hands executes to the main thread (which runs user code,
so that signals and KeyboardInterrupt land there), handles cancels itself and hands completions to
a completion thread, so neither waits for a running statement. The worker exits at the end of
stdin. Anything else goes to stderr, the driver log.
"""

import ast
import io
import json
import os
import queue
import re
import rlcompleter
import signal
import sys
import threading
import time
import traceback
import warnings

CANCEL_GIVE_UP_SECONDS = 30
CANCEL_RESEND_SECONDS = 0.1
MAX_CANDIDATES = 1000


class UserCode:
    """Which statement is inside user code now. SIGINT becomes KeyboardInterrupt only there:
    between statements (or in the worker's own protocol code) a SIGINT is ignored, so neither a
    late cancel nor a Ctrl-C of the process group ends the worker."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statement_id = None  # set while user code runs
        self.interrupted = None   # the statement a KeyboardInterrupt was raised in
        self.cancelling = None    # the statement the cancel thread is signalling
        self.cancelled_early = None  # a statement cancelled before it reached user code

    def on_sigint(self, signum, frame):
        statement_id = self.statement_id
        if statement_id is None:
            return
        # A KeyboardInterrupt inside py4j would leave the py4j connection with an unread answer,
        # and the next call on it would read the wrong reply. The agent cancels the Spark job
        # group at the same time, so the py4j call returns soon; the cancel thread keeps
        # signalling until the statement is back in plain Python code.
        f = frame
        while f is not None:
            if os.sep + "py4j" + os.sep in f.f_code.co_filename:
                return
            f = f.f_back
        self.interrupted = statement_id
        raise KeyboardInterrupt()

    def enter(self, statement_id):
        """Marks user code of statement_id as running; raises KeyboardInterrupt if it was
        cancelled while its request waited (the agent sends cancel right behind execute)."""
        with self.lock:
            self.statement_id = statement_id
            if self.cancelled_early == statement_id:
                self.interrupted = statement_id
                raise KeyboardInterrupt()

    def cancel(self, statement_id):
        """Interrupts statement_id if it is running (or, if it has not started, as soon as it
        starts); starts at most one signalling thread."""
        with self.lock:
            if self.statement_id != statement_id:
                self.cancelled_early = statement_id
                return
            if self.cancelling == statement_id:
                return
            self.cancelling = statement_id
        threading.Thread(target=self._signal_until_interrupted, args=(statement_id,),
                         name="hearth-cancel", daemon=True).start()

    def _signal_until_interrupted(self, statement_id):
        main = threading.main_thread().ident
        deadline = time.monotonic() + CANCEL_GIVE_UP_SECONDS
        # pthread_kill, not os.kill: the signal must reach the main thread so that a blocking
        # call there (time.sleep, a socket read) returns with EINTR and the handler runs.
        while (self.statement_id == statement_id and self.interrupted != statement_id
               and time.monotonic() < deadline):
            signal.pthread_kill(main, signal.SIGINT)
            time.sleep(CANCEL_RESEND_SECONDS)
        with self.lock:
            if self.cancelling == statement_id:
                self.cancelling = None


USER = UserCode()


def open_protocol_streams():
    """Keeps fds 0 and 1 for the protocol and points the process's own fds elsewhere, so that
    neither user code nor its child processes can read a request or write into a reply."""
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, "r")
    sys.stdout = sys.stderr
    return proto_in, proto_out


def log(message):
    sys.__stderr__.write("hearth_worker: %s\n" % message)
    sys.__stderr__.flush()


def attach_to_spark(session_id):
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession, SQLContext

    gateway = launch_gateway()
    entry = gateway.entry_point
    jsc = entry.javaSparkContext()
    conf = SparkConf(_jvm=gateway.jvm, _jconf=jsc.getConf())
    sc = SparkContext(gateway=gateway, jsc=jsc, conf=conf)
    spark = SparkSession(sc, jsparkSession=entry.sparkSession(session_id))
    sql_context = SQLContext(sc, spark)
    return {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "spark": spark,
        "sc": sc,
        "sqlContext": sql_context,
    }


def error_reply(statement_id, exc, frames=True):
    """Livy's error output. The worker's frames and the top <stdin> frame are left out (as
    Livy's fake_shell does), so a NameError shows only the header and the exception."""
    if not frames:
        lines = traceback.format_exception_only(type(exc), exc)
    else:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != "<stdin>":
            tb = tb.tb_next
        if tb is not None:
            tb = tb.tb_next
        # The worker's own frames (its SIGINT handler, under a cancelled statement) are left out.
        frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
        lines = ["Traceback (most recent call last):\n"]
        lines += traceback.format_list(frames)
        lines += traceback.format_exception_only(type(exc), exc)
    return {
        "status": "error",
        "execution_count": statement_id,
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": lines,
    }


def execute(namespace, statement_id, code):
    """Runs code like Livy's fake_shell: all top-level nodes but the last with exec, the last
    in 'single' mode so that an expression's repr is displayed."""
    try:
        tree = ast.parse(code, filename="<stdin>", mode="exec")
        body = ast.Module(body=tree.body[:-1], type_ignores=[])
        last = ast.Interactive(body=tree.body[-1:])
        compiled_body = compile(body, "<stdin>", "exec")
        compiled_last = compile(last, "<stdin>", "single")
    except SyntaxError as exc:
        return error_reply(statement_id, exc, frames=False)

    captured = io.StringIO()
    saved = sys.stdout, sys.stderr, sys.displayhook
    sys.stdout = sys.stderr = captured
    sys.displayhook = sys.__displayhook__  # writes repr to sys.stdout, i.e. the capture
    try:
        try:
            USER.enter(statement_id)
            exec(compiled_body, namespace)
            exec(compiled_last, namespace)
        finally:
            USER.statement_id = None  # from here on SIGINT is ignored again
    except BaseException as exc:  # SystemExit and KeyboardInterrupt must not end the worker
        return error_reply(statement_id, exc)
    finally:
        sys.stdout, sys.stderr, sys.displayhook = saved
    return {
        "status": "ok",
        "execution_count": statement_id,
        "data": {"text/plain": captured.getvalue().rstrip()},
    }


def set_job_group(namespace, request):
    sc = namespace.get("sc")
    group = request.get("job_group")
    if sc is None or not group:
        return
    try:
        sc.setJobGroup(group, "Hearth statement " + group, interruptOnCancel=True)
        if request.get("pool"):
            sc.setLocalProperty("spark.scheduler.pool", request["pool"])
    except Exception as exc:  # the statement still runs; cancel is then less precise
        log("could not set the job group %s: %r" % (group, exc))


def complete(namespace, code, cursor):
    """Names that complete the dotted name before the cursor, without its prefix and without
    rlcompleter's "(" or " " suffix: "spark.ran" -> ["range"], "pri" -> ["print", ...]."""
    match = re.search(r"[^\W\d][\w.]*$", code[:max(0, cursor)])
    if not match:
        return []
    token = match.group(0)
    completer = rlcompleter.Completer(namespace)
    if "." in token:
        matches = completer.attr_matches(token)
    else:
        matches = completer.global_matches(token)
    names = set()
    for m in matches:
        name = m.rsplit(".", 1)[-1].rstrip("( ")
        if name:
            names.add(name)
    return sorted(names)[:MAX_CANDIDATES]


class Answers:
    """The protocol's stdout, shared by the main and the completion thread."""

    def __init__(self, proto_out):
        self.proto_out = proto_out
        self.lock = threading.Lock()

    def send(self, reply):
        line = json.dumps(reply) + "\n"  # encode first: a TypeError leaves the stream intact
        with self.lock:
            self.proto_out.write(line)
            self.proto_out.flush()


def read_requests(proto_in, executes, completions):
    """The reader thread: executes to the main thread, completions to the completion thread,
    cancels handled here. None on both queues at the end of stdin."""
    try:
        for line in proto_in:
            try:
                request = json.loads(line.decode("utf-8"))
                op = request.get("op")
            except (ValueError, AttributeError) as exc:
                log("bad request %r: %r" % (line[:200], exc))
                continue
            if op == "execute":
                executes.put(request)
            elif op == "complete":
                completions.put(request)
            elif op == "cancel":
                USER.cancel(request.get("statement_id"))
            else:
                log("unknown request %r" % (op,))
    finally:
        executes.put(None)
        completions.put(None)


def serve_completions(namespace, completions, answers):
    while True:
        request = completions.get()
        if request is None:
            return
        try:
            candidates = complete(namespace, str(request.get("code", "")), int(request.get("cursor", 0)))
        except BaseException as exc:  # a completion never ends the worker
            log("completion failed: %r" % (exc,))
            candidates = []
        try:
            answers.send({"op": "complete", "id": request.get("id"), "candidates": candidates})
        except (TypeError, ValueError, OSError) as exc:
            log("cannot answer a completion: %r" % (exc,))


def run_statement(namespace, request):
    statement_id = 0
    try:
        statement_id = int(request["statement_id"])
        set_job_group(namespace, request)
        return execute(namespace, statement_id, request["code"])
    except BaseException as exc:
        log("internal error: %r" % (exc,))
        return {
            "status": "error",
            "execution_count": statement_id,
            "ename": "InternalError",
            "evalue": str(exc),
            "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__),
        }


def main():
    # First thing: a SIGINT while the worker starts or waits must not kill it.
    signal.signal(signal.SIGINT, USER.on_sigint)
    proto_in, proto_out = open_protocol_streams()
    session_id = int(os.environ["HEARTH_SESSION_ID"])
    namespace = attach_to_spark(session_id)
    # pyspark's SparkContext installs a SIGINT handler that cancels *all* jobs of the driver,
    # those of other sessions too; ours replaces it.
    signal.signal(signal.SIGINT, USER.on_sigint)
    # Livy's clients read DataFrame.toJSON() output as JSON lines (sparkmagic's %%sql, pylivy's
    # download); Spark 4 warns on the first toJSON of a process, and since stderr is part of a
    # statement's output (as in Livy) that warning would break the first such read.
    warnings.filterwarnings("ignore", message="The return type of DataFrame.toJSON will be changed")
    answers = Answers(proto_out)
    executes = queue.Queue()
    completions = queue.Queue()
    threading.Thread(target=read_requests, args=(proto_in, executes, completions),
                     name="hearth-reader", daemon=True).start()
    threading.Thread(target=serve_completions, args=(namespace, completions, answers),
                     name="hearth-completer", daemon=True).start()
    answers.send({"op": "ready"})
    while True:
        request = executes.get()
        if request is None:
            return
        reply = run_statement(namespace, request)
        try:
            answers.send({"op": "execute", "output": reply})
        except (TypeError, ValueError):  # a reply json cannot encode
            answers.send({"op": "execute", "output": {
                "status": "error",
                "execution_count": reply.get("execution_count", 0),
                "ename": "InternalError",
                "evalue": "cannot encode the output",
                "traceback": [],
            }})


if __name__ == "__main__":
    main()
