"""Hearth's Python worker: one process per pyspark session, started by the driver agent.

Attaches to the driver JVM through py4j (PYSPARK_GATEWAY_PORT / PYSPARK_GATEWAY_SECRET), binds
`spark`, `sc` and `sqlContext` in one persistent namespace, then answers requests.

Protocol, one JSON object per line: the agent writes {"statement_id": N, "code": "...",
"job_group": "...", "pool": "..."} on stdin; the worker answers with Livy's output object on its
real stdout (user output is captured). The first line the worker writes is {"ready": true}.
The worker exits at the end of stdin. Anything else goes to stderr, the driver log.
"""

import ast
import io
import json
import os
import sys
import traceback


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
        lines = ["Traceback (most recent call last):\n"]
        lines += traceback.format_list(traceback.extract_tb(tb))
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
        exec(compiled_body, namespace)
        exec(compiled_last, namespace)
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


def answer(proto_out, reply):
    proto_out.write(json.dumps(reply) + "\n")
    proto_out.flush()


def main():
    proto_in, proto_out = open_protocol_streams()
    session_id = int(os.environ["HEARTH_SESSION_ID"])
    namespace = attach_to_spark(session_id)
    answer(proto_out, {"ready": True})
    for line in proto_in:
        statement_id = 0
        try:
            request = json.loads(line.decode("utf-8"))
            statement_id = int(request["statement_id"])
            set_job_group(namespace, request)
            reply = execute(namespace, statement_id, request["code"])
        except BaseException as exc:
            log("internal error: %r" % (exc,))
            reply = {
                "status": "error",
                "execution_count": statement_id,
                "ename": "InternalError",
                "evalue": str(exc),
                "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__),
            }
        try:
            answer(proto_out, reply)
        except (TypeError, ValueError) as exc:  # a reply json cannot encode
            answer(proto_out, {
                "status": "error",
                "execution_count": statement_id,
                "ename": "InternalError",
                "evalue": "cannot encode the output: %s" % exc,
                "traceback": [],
            })


if __name__ == "__main__":
    main()
