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
  {"op": "add_path", "path": "...", "include": "name.zip"?}
      -> no answer; puts path on sys.path (a session's pyfile: its directory, or a package file)
         and include (a package's file name) on the executors' Python path, as addPyFile does

Threads: a reader thread reads stdin and hands executes to the main thread (which runs user code,
so that signals and KeyboardInterrupt land there), handles cancels and add_paths itself (a
statement after an add_path always sees the path; one running may see it) and hands completions to
a completion thread, so neither waits for a running statement. The worker exits at the end of
stdin. Anything else goes to stderr, the driver log.

A cell runs as in Livy's fake_shell: Python, or, when the cell is not valid Python as a whole,
chunks of Python and magic lines: `%json v`, `%table v`, `%matplot plt` (see execute()).

The SparkContext belongs to the driver and all of its sessions: stopping it from Python
(spark.stop(), sc.stop(), with-blocks, StreamingContext.stop()) prints a notice instead (see
guard_shared_context()), and SystemExit (sys.exit(), exit(), quit()) ends only the statement,
with an error output. A worker that dies anyway (os._exit(), a signal, a crash) is replaced by
the agent on the session's next statement, with a fresh namespace.
"""

import ast
import base64
import datetime
import decimal
import faulthandler
import importlib
import io
import json
import keyword
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


SHARED_CONTEXT = "the SparkContext is shared by this driver's sessions; delete the session to end it"
SYSTEM_EXIT_NOTICE = ("Hearth: SystemExit ignored \u2014 the Python worker of this session keeps "
                      "running, and its variables are kept\n")


def guard_shared_context():
    """Makes Python's ways to stop the SparkContext print a notice (into the statement's output,
    as user code prints) instead. The context is the driver's, shared by all of its sessions;
    stopping it would end every session of the driver. Patched on the classes, so that every
    spelling lands here: spark.stop(), sc.stop(), spark.sparkContext.stop(),
    SparkSession.builder.getOrCreate().stop(), SparkContext.getOrCreate().stop(),
    SparkSession.stop(spark), `with spark:` / `with sc:` (their __exit__ calls stop()), and
    StreamingContext.stop(), which would stop the JVM's context itself unless told not to.
    Nothing guards the JVM objects reached through py4j (sc._jsc.stop(), spark._jsparkSession
    .stop(), spark._jvm.System.exit()): the agent notices a stopped context (ContextWatch)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    def session_stop(self):
        print("Hearth: spark.stop() ignored \u2014 " + SHARED_CONTEXT)

    def context_stop(self):
        print("Hearth: sc.stop() ignored \u2014 " + SHARED_CONTEXT)

    SparkSession.stop = session_stop
    SparkContext.stop = context_stop
    try:
        from pyspark.streaming import StreamingContext
    except ImportError:  # a pyspark without DStreams
        return
    streaming_stop = StreamingContext.stop

    def streaming_context_stop(self, stopSparkContext=True, stopGraceFully=False):
        streaming_stop(self, False, stopGraceFully)
        if stopSparkContext:
            print("Hearth: StreamingContext.stop() stopped the streaming context only \u2014 "
                  + SHARED_CONTEXT)

    StreamingContext.stop = streaming_context_stop


def error_reply(statement_id, exc, frames=True):
    """Livy's error output. The worker's frames and the top <stdin> frame are left out (as
    Livy's fake_shell does), so a NameError shows only the header and the exception."""
    if isinstance(exc, UnknownMagic):
        lines = ["UnknownMagic: %s\n" % exc]
    elif not frames:
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


class UnknownMagic(Exception):
    """A magic line (`%name ...`) whose name is empty or not one of MAGICS."""


class MagicError(Exception):
    """An error of a magic, reported with only its exception line (no frames), as Livy's
    fake_shell reports the errors of its magics."""

    def __init__(self, exc):
        super().__init__(exc)
        self.exc = exc


def compile_python(code, first_line=1):
    """code -> (all top-level nodes but the last, for exec; the last, for 'single' mode, so that
    an expression's repr is displayed). first_line keeps a chunk's line numbers those of the
    cell."""
    tree = ast.parse("\n" * (first_line - 1) + code, filename="<stdin>", mode="exec")
    body = ast.Module(body=tree.body[:-1], type_ignores=[])
    last = ast.Interactive(body=tree.body[-1:])
    return compile(body, "<stdin>", "exec"), compile(last, "<stdin>", "single")


def parse_cell(code):
    """The cell as steps to run in order, as Livy's fake_shell splits it: ("python", compiled)
    or ("magic", line). Magic lines (starting with "%") are looked for only when the whole cell
    is not valid Python; then the cell is cut into chunks of Python lines and magic lines.
    Raises SyntaxError (nothing of the cell has run then)."""
    try:
        return [("python", compile_python(code))]
    except SyntaxError:
        lines = code.rstrip().split("\n")
        if not any(line.startswith("%") for line in lines):
            raise
    steps = []
    normal, normal_start = [], 1
    for number, line in enumerate(lines, 1):
        if line.startswith("%"):
            if normal:
                steps.append(("python", compile_python("\n".join(normal), normal_start)))
                normal = []
            steps.append(("magic", line))
        else:
            if not normal:
                normal_start = number
            normal.append(line)
    if normal:
        steps.append(("python", compile_python("\n".join(normal), normal_start)))
    return steps


def magic_value(namespace, argument):
    """The value a magic shows: a name bound in the session's namespace (Livy: a missing name ->
    KeyError), else a Python expression evaluated there."""
    argument = argument.strip()
    if argument in namespace:
        return namespace[argument]
    if not argument or (argument.isidentifier() and not keyword.iskeyword(argument)):
        raise MagicError(KeyError(argument))
    try:
        expression = compile(argument, "<stdin>", "eval")
    except SyntaxError as exc:
        raise MagicError(exc)
    return eval(expression, namespace)


def json_checked(data):
    """data if it can be sent as strict JSON (no NaN/Infinity), else a MagicError."""
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MagicError(exc)
    return data


def magic_json(namespace, argument):
    return json_checked({"application/json": magic_value(namespace, argument)})


def table_cell(value):
    """(Livy table type, JSON value) of one table cell. Types are looked up by exact type, as
    Livy does; anything else is shown as its str()."""
    kind = type(value)
    if value is None:
        return "NULL_TYPE", None
    if kind is bool:
        return "BOOLEAN_TYPE", value
    if kind is int:
        return "INT_TYPE", value
    if kind is float:
        return "DOUBLE_TYPE", value
    if kind is datetime.date:
        return "DATE_TYPE", str(value)
    if kind is datetime.datetime:
        return "TIMESTAMP_TYPE", str(value)
    if kind is decimal.Decimal:
        return "DECIMAL_TYPE", str(value)
    if kind in (list, tuple):
        item_type, items = None, []
        for item in value:
            this_type, item = table_cell(item)
            if item_type is None:
                item_type = this_type
            elif item_type != this_type:
                raise MagicError(ValueError("value has inconsistent types"))
            items.append(item)
        return "ARRAY_TYPE", items
    if kind is dict:
        key_type, value_type, items = None, None, {}
        for key, item in value.items():
            this_key_type, key = table_cell(key)
            this_value_type, item = table_cell(item)
            if key_type is None:
                key_type, value_type = this_key_type, this_value_type
            elif key_type != this_key_type or value_type != this_value_type:
                raise MagicError(ValueError("value has inconsistent types"))
            items[key] = item
        return "MAP_TYPE", items
    return "STRING_TYPE", str(value)


def magic_table(namespace, argument):
    """Livy's table: rows are dicts (or pyspark Rows; columns = keys, sorted), lists or tuples
    (columns "0", "1", ...) or single values; a column's type is that of its values, None
    fitting any type."""
    value = magic_value(namespace, argument)
    if not isinstance(value, (list, tuple)):
        value = [value]
    headers = {}
    data = []
    try:
        for row in value:
            if type(row).__name__ == "Row" and hasattr(row, "asDict"):
                row = row.asDict()
            if not isinstance(row, (list, tuple, dict)):
                row = [row]
            columns = enumerate(row) if isinstance(row, (list, tuple)) else sorted(row.items())
            cells = []
            for name, cell in columns:
                cell_type, cell = table_cell(cell)
                header = headers.get(name)
                if header is None:
                    headers[name] = {"name": str(name), "type": cell_type}
                elif cell_type != "NULL_TYPE" and header["type"] != cell_type:
                    if header["type"] != "NULL_TYPE":
                        raise MagicError(Exception("table rows have different types"))
                    header["type"] = cell_type
                cells.append(cell)
            data.append(cells)
        headers = [header for _, header in sorted(headers.items())]
    except TypeError as exc:  # keys that do not sort together (e.g. dict rows and list rows)
        raise MagicError(exc)
    return json_checked({"application/vnd.livy.table.v1+json": {"headers": headers, "data": data}})


def magic_matplot(namespace, argument):
    """The current figure of pyplot (`%matplot plt`), or a Figure, as a base64 PNG."""
    try:
        value = magic_value(namespace, argument)
        figure = value.gcf() if hasattr(value, "gcf") else value
        image = io.BytesIO()
        figure.savefig(image, format="png")
    except MagicError:
        raise
    except Exception as exc:
        raise MagicError(exc)
    return {"image/png": base64.b64encode(image.getvalue()).decode("ascii"), "text/plain": ""}


MAGICS = {"json": magic_json, "table": magic_table, "matplot": magic_matplot}


def run_magic(namespace, line):
    name, _, argument = line[1:].partition(" ")
    if not name:
        raise UnknownMagic("magic command not specified")
    handler = MAGICS.get(name)
    if handler is None:
        raise UnknownMagic("unknown magic command '%s'" % name)
    return handler(namespace, argument)


def execute(namespace, statement_id, code):
    """Runs a cell like Livy's fake_shell: Python code with all top-level nodes but the last
    run with exec and the last in 'single' mode (an expression's repr is displayed), and magic
    lines, when the cell is not valid Python as a whole. The data is that of the last step: a
    magic's mime types (text/plain only if there is captured output, or if the magic gives it),
    or text/plain."""
    try:
        steps = parse_cell(code)
    except SyntaxError as exc:
        return error_reply(statement_id, exc, frames=False)

    captured = io.StringIO()
    saved = sys.stdout, sys.stderr, sys.displayhook
    sys.stdout = sys.stderr = captured
    sys.displayhook = sys.__displayhook__  # writes repr to sys.stdout, i.e. the capture
    result = None
    try:
        try:
            USER.enter(statement_id)
            for kind, step in steps:
                if kind == "python":
                    exec(step[0], namespace)
                    exec(step[1], namespace)
                    result = None
                else:
                    result = run_magic(namespace, step)
        finally:
            USER.statement_id = None  # from here on SIGINT is ignored again
    except (UnknownMagic, MagicError) as exc:
        return error_reply(statement_id, exc.exc if isinstance(exc, MagicError) else exc,
                           frames=False)
    except SystemExit as exc:  # sys.exit(), exit(), quit(): the statement ends, the worker not
        reply = error_reply(statement_id, exc)
        reply["traceback"].append(SYSTEM_EXIT_NOTICE)
        return reply
    except BaseException as exc:  # KeyboardInterrupt (a cancel) must not end the worker either
        return error_reply(statement_id, exc)
    finally:
        sys.stdout, sys.stderr, sys.displayhook = saved
        if getattr(sys.stdin, "closed", True):  # exit() and quit() close it before SystemExit
            sys.stdin = open(os.devnull, "r")
    data = dict(result or {})
    magic_text = "text/plain" in data
    output = (data.pop("text/plain", "") + captured.getvalue()).rstrip()
    if output or magic_text or not data:
        data["text/plain"] = output
    return {
        "status": "ok",
        "execution_count": statement_id,
        "data": data,
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


def add_path(namespace, path, include):
    """A pyfile of the session: path first on sys.path after the script's directory (where
    pyspark's addPyFile puts it); a package's file name also into sc._python_includes, which
    pyspark sends with every Python function so that executors put it on their path too (the
    agent has sc.addFile'd it, so executors have it in their SparkFiles directory)."""
    if isinstance(path, str) and path and path not in sys.path:
        sys.path.insert(1, path)
    sc = namespace.get("sc")
    includes = getattr(sc, "_python_includes", None)
    if isinstance(include, str) and include and includes is not None and include not in includes:
        includes.append(include)
    importlib.invalidate_caches()


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


def read_requests(namespace, proto_in, executes, completions):
    """The reader thread: executes to the main thread, completions to the completion thread,
    cancels and add_paths handled here. None on both queues at the end of stdin."""
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
            elif op == "add_path":
                try:
                    add_path(namespace, request.get("path"), request.get("include"))
                except Exception as exc:  # never ends the reader
                    log("add_path %r failed: %r" % (request.get("path"), exc))
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
    # A crash (a segfault in a native library) leaves the Python stack in the driver log, and in
    # the error output of the statement that was running (the agent shows stderr's last lines).
    faulthandler.enable(file=sys.__stderr__)
    # The driver is headless: pyplot draws with Agg (which %matplot saves as PNG) unless the
    # session's environment names another backend.
    os.environ.setdefault("MPLBACKEND", "Agg")
    session_id = int(os.environ["HEARTH_SESSION_ID"])
    namespace = attach_to_spark(session_id)
    guard_shared_context()
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
    threading.Thread(target=read_requests, args=(namespace, proto_in, executes, completions),
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
