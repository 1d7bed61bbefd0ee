"""Apache Livy's real Python clients against Hearth: pylivy (PyPI `livy`) and sparkmagic's Livy client.

Each test asserts what the user of the client sees. The clients do their own HTTP and their own
polling; the tests only add deadline-bounded waits of their own where a client has none.
Sessions cost a real Spark driver each, so each client shares one pyspark session (a class-scoped
fixture); only pylivy's sql-kind scenario starts a session of its own.
"""
import json
import os
import shutil
import tempfile
import threading
import uuid

import pandas
import pytest
import requests

from hearth_harness import wait_until

# sparkmagic reads ~/.sparkmagic/config.json and logs under that directory unless told otherwise;
# it must see neither the user's home nor leave files there. Its constants are read at import.
# With the in-process configuration below it creates nothing there; the directory is removed anyway.
SPARKMAGIC_DIR = os.path.join(tempfile.gettempdir(), f"hearth-test-sparkmagic-{os.getpid()}-{uuid.uuid4().hex[:8]}")
os.environ["SPARKMAGIC_CONF_DIR"] = SPARKMAGIC_DIR

from livy import LivySession, SessionKind, SessionState, SparkRuntimeError  # noqa: E402
from livy.client import LivyClient  # noqa: E402
from livy.models import OutputStatus, StatementKind, StatementState, Version  # noqa: E402

import sparkmagic.utils.configuration as sparkmagic_conf  # noqa: E402
from sparkmagic.livyclientlib.command import Command  # noqa: E402
from sparkmagic.livyclientlib.endpoint import Endpoint  # noqa: E402
from sparkmagic.livyclientlib.exceptions import BadUserDataException, DataFrameParseException  # noqa: E402
from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient  # noqa: E402
from sparkmagic.livyclientlib.sparkcontroller import SparkController  # noqa: E402
from sparkmagic.livyclientlib.sqlquery import SQLQuery  # noqa: E402
from sparkmagic.utils.constants import MIMETYPE_TEXT_PLAIN  # noqa: E402

# sparkmagic's progress bar passes an argument ipywidgets no longer takes: third-party noise.
pytestmark = pytest.mark.filterwarnings("ignore:Passing unrecognized arguments to super:DeprecationWarning")

FAST_CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}

# Spark 4's pyspark warns on the first DataFrame.toJSON() of a Python process; the clients parse
# toJSON output as JSON lines, so the *_first_* tests check that the very first download of a
# session works (the worker keeps that warning out of statement output).
FIRST_TOJSON = {}  # client -> what its first JSON-lines download of its session gave


def outcome_of(action):
    try:
        return action()
    except Exception as e:  # recorded for the *_first_* test to show
        return e


@pytest.fixture(scope="module", autouse=True)
def _sparkmagic_scratch_dir():
    yield
    shutil.rmtree(SPARKMAGIC_DIR, ignore_errors=True)


def session_ids(hearth):
    return [s["id"] for s in hearth.get("/sessions").json()["sessions"]]


# ------------------------------------------------------------------------------------------------
# pylivy
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="class")
def pylivy_session(hearth):
    """One pylivy pyspark session; its context manager deletes it after the last pylivy test."""
    with LivySession.create(hearth.url, kind=SessionKind.PYSPARK, name=f"pylivy-{uuid.uuid4().hex[:8]}",
                            spark_conf=FAST_CONF, echo=False) as session:
        session.run("first_df = spark.createDataFrame([(0,), (1,)], 'id INT')")
        FIRST_TOJSON["pylivy"] = outcome_of(lambda: session.download("first_df"))
        yield session
    # Leaving the context manager deleted the session (DELETE returns once the driver stopped).
    client = LivyClient(hearth.url)
    try:
        assert client.get_session(session.session_id) is None
    finally:
        client.close()
    assert session.session_id not in session_ids(hearth)


class TestPylivy:
    """What a pylivy user sees; one shared pyspark session (deleted when the class is done)."""

    def test_pylivy_reads_hearths_version(self, hearth):
        client = LivyClient(hearth.url)
        try:
            version = client.server_version()
            assert version >= Version("0.5.0")  # pylivy's legacy check uses this
            assert not client.legacy_server()
        finally:
            client.close()

    def test_pylivy_session_is_idle_after_wait(self, pylivy_session):
        assert pylivy_session.state == SessionState.IDLE

    def test_pylivy_first_download_of_a_session(self, pylivy_session):
        first = FIRST_TOJSON["pylivy"]
        if isinstance(first, Exception):
            raise first
        assert first["id"].tolist() == [0, 1]

    def test_pylivy_run_gives_the_text_output(self, pylivy_session):
        output = pylivy_session.run("1+1")
        assert output.text == "2"
        assert output.json is None and output.ename is None

    def test_pylivy_download_of_a_dataframe(self, pylivy_session):
        pylivy_session.run(
            "df = spark.createDataFrame([(1, 'one'), (2, 'two'), (3, None)], 'n INT, word STRING')")
        downloaded = pylivy_session.download("df")
        # Spark's toJSON leaves null fields out of a row, pandas turns the missing value into NaN.
        expected = pandas.DataFrame({"n": [1, 2, 3], "word": ["one", "two", float("nan")]})
        pandas.testing.assert_frame_equal(downloaded, expected)

    def test_pylivy_upload_then_download_round_trip(self, pylivy_session):
        data = pandas.DataFrame({"city": ["Oslo", "Lima"], "population": [709000, 10000000]})
        pylivy_session.upload("uploaded", data)
        assert pylivy_session.run("uploaded.count()").text == "2"
        back = pylivy_session.download("uploaded").sort_values("city").reset_index(drop=True)
        pandas.testing.assert_frame_equal(back[["city", "population"]], data.sort_values("city").reset_index(drop=True))

    def test_pylivy_error_raises_spark_runtime_error(self, hearth, pylivy_session):
        with pytest.raises(SparkRuntimeError) as raised:
            pylivy_session.run("1 / 0")
        error = raised.value
        assert error.ename == "ZeroDivisionError"
        assert "division by zero" in error.evalue
        assert error.traceback and "ZeroDivisionError" in "".join(error.traceback)
        # check=False hands back the error output instead of raising.
        unchecked = LivySession(hearth.url, pylivy_session.session_id, check=False, echo=False)
        try:
            output = unchecked.run("undefined_name_42")
            assert output.status == OutputStatus.ERROR
            assert output.ename == "NameError" and "undefined_name_42" in output.evalue
        finally:
            unchecked.client.close()
        # The session still works.
        assert pylivy_session.run("'alive'").text == "'alive'"

    def test_pylivy_client_lists_and_gets_sessions(self, hearth, pylivy_session):
        client = LivyClient(hearth.url)
        try:
            listed = {s.session_id: s for s in client.list_sessions()}
            assert pylivy_session.session_id in listed
            mine = client.get_session(pylivy_session.session_id)
            assert mine == listed[pylivy_session.session_id]
            assert mine.kind == SessionKind.PYSPARK
            assert mine.state == SessionState.IDLE
            assert mine.proxy_user is None
            statements = client.list_statements(pylivy_session.session_id)
            assert [s.statement_id for s in statements] == list(range(len(statements)))
            assert statements[0].code and statements[0].output is not None
            assert client.get_session(987654321) is None  # an unknown session is None, not an exception
        finally:
            client.close()

    def test_pylivy_statement_with_explicit_kind(self, hearth, pylivy_session):
        client = LivyClient(hearth.url)
        try:
            statement = client.create_statement(pylivy_session.session_id, "SELECT 40 + 2 AS answer",
                                                kind=StatementKind.SQL)

            def finished():
                current = client.get_statement(pylivy_session.session_id, statement.statement_id)
                return current if current.output is not None else None
            done = wait_until(finished, 120, "the sql statement", interval=0.1)
            assert done.state == StatementState.AVAILABLE
            assert done.output.json["data"] == [[42]]
        finally:
            client.close()

    def test_pylivy_sql_session_download_sql(self, hearth):
        client = LivyClient(hearth.url)
        try:
            # The context manager waits for the session, and deletes it on exit.
            with LivySession.create(hearth.url, kind=SessionKind.SQL, name=f"pylivy-sql-{uuid.uuid4().hex[:8]}",
                                    spark_conf=FAST_CONF, echo=False) as session:
                assert client.get_session(session.session_id).kind == SessionKind.SQL
                frame = session.download_sql("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'")
                expected = pandas.DataFrame({"a": [1, 2], "b": ["x", "y"]})
                pandas.testing.assert_frame_equal(frame.sort_values("a").reset_index(drop=True), expected)
                with pytest.raises(SparkRuntimeError) as raised:
                    session.download_sql("SELECT * FROM no_such_table_here")
                assert "no_such_table_here" in raised.value.evalue
            assert client.get_session(session.session_id) is None
            assert session.session_id not in session_ids(hearth)
        finally:
            client.close()


# ------------------------------------------------------------------------------------------------
# sparkmagic
# ------------------------------------------------------------------------------------------------

class RecordingDisplay:
    """Stands in for sparkmagic's IpythonDisplay (no Jupyter here); keeps what the user would see."""

    def __init__(self):
        self.lines, self.html_parts, self.errors, self.displayed = [], [], [], []

    def display(self, to_display):
        self.displayed.append(to_display)

    def html(self, to_display):
        self.html_parts.append(to_display)

    def write(self, msg):
        self.lines.append(msg)

    def writeln(self, msg):
        self.lines.append(msg)

    def send_error(self, error):
        self.errors.append(error)

    def stderr_flush(self):
        pass

    def stdout_flush(self):
        pass


class RecordingHttpClient(LivyReliableHttpClient):
    """sparkmagic's own Livy client (built as from_endpoint builds it), recording every answer it got
    and counting the GET /sessions/<id> calls made from other threads (the heartbeat)."""

    def __init__(self, endpoint):
        inner = LivyReliableHttpClient.from_endpoint(endpoint)
        super().__init__(inner._http_client, endpoint)
        self.background_gets = 0
        self.answers = []  # (method, path, status code)
        inner._http_client._session.hooks["response"].append(
            lambda r, *args, **kwargs: self.answers.append(
                (r.request.method, requests.utils.urlparse(r.url).path, r.status_code)))

    def get_session(self, session_id):
        if threading.current_thread() is not threading.main_thread():
            self.background_gets += 1
        return super().get_session(session_id)


@pytest.fixture(scope="module")
def sparkmagic_config():
    # In-process configuration instead of ~/.sparkmagic/config.json: a non-empty override dict
    # means sparkmagic never reads a config file.
    sparkmagic_conf.override_all({
        "logging_config": {"version": 1, "handlers": {"null": {"class": "logging.NullHandler"}},
                           "loggers": {"magicsLogger": {"handlers": ["null"], "propagate": 0}}},
        "session_configs": {"conf": FAST_CONF, "name": f"sparkmagic-{uuid.uuid4().hex[:8]}"},
        "livy_session_startup_timeout_seconds": 180,
        "heartbeat_refresh_seconds": 0.5,
        "heartbeat_retry_seconds": 0.5,
        "retry_policy": "configurable",
        "retry_seconds_to_sleep_list": [0.2, 0.5],
        "configurable_retry_policy_max_retries": 2,
    })
    yield sparkmagic_conf
    sparkmagic_conf.override_all({})


@pytest.fixture(scope="class")
def sparkmagic_controller(hearth, sparkmagic_config):
    """What `%spark add -s main -l python -u <url>` does: SparkController.add_session, which makes a
    sparkmagic LivySession (with a heartbeat) and start()s it. The last sparkmagic test deletes it."""
    controller = SparkController(RecordingDisplay())
    endpoint = Endpoint(hearth.url, None)
    controller._http_clients[endpoint] = RecordingHttpClient(endpoint)  # the client add_session uses
    properties = sparkmagic_config.get_session_properties("python")
    assert properties["kind"] == "pyspark"
    controller.add_session("main", endpoint, False, properties)
    try:
        session = controller.get_session_by_name_or_default("main")
        FIRST_TOJSON["sparkmagic"] = outcome_of(lambda: SQLQuery("SELECT 1 AS a").execute(session))
        yield controller
    finally:
        if "main" in controller.get_client_keys():
            controller.cleanup()


@pytest.fixture
def sparkmagic_session(sparkmagic_controller):
    return sparkmagic_controller.get_session_by_name_or_default("main")


class TestSparkmagic:
    """What a sparkmagic user sees, without a Jupyter kernel; one shared pyspark session."""

    def test_sparkmagic_start_reaches_idle_and_finds_spark(self, hearth, sparkmagic_session):
        session = sparkmagic_session
        # sparkmagic's status is a cached value that its heartbeat thread refreshes; it may have
        # caught the session busy with the fixture's first statement, so ask as sparkmagic does.
        session.wait_for_idle(60)
        assert session.status == "idle"
        assert session.sql_context_variable_name == "spark"
        display = session.ipython_display
        assert "Starting Spark application" in display.lines
        assert "SparkSession available as 'spark'." in display.lines
        assert not display.errors
        answers = session.http_client.answers
        assert answers[0] == ("POST", "/sessions", 201)
        assert all(status == 200 for method, path, status in answers[1:] if method == "GET")
        # sparkmagic asked for a heartbeat timeout; Hearth keeps it.
        info = hearth.get(f"/sessions/{session.id}").json()
        assert info["heartbeatTimeoutInSecond"] == 60
        assert info["kind"] == "pyspark"
        assert info["name"] == sparkmagic_conf.session_configs()["name"]

    def test_sparkmagic_first_sql_query_of_a_session(self, sparkmagic_session):
        first = FIRST_TOJSON["sparkmagic"]
        if isinstance(first, Exception):
            raise first
        assert first.to_dict("records") == [{"a": 1}]

    def test_sparkmagic_command_success(self, sparkmagic_session):
        assert Command("1+1").execute(sparkmagic_session) == (True, "2", MIMETYPE_TEXT_PLAIN)
        assert Command("print('hello')\nprint('world')").execute(sparkmagic_session) == \
            (True, "hello\nworld", MIMETYPE_TEXT_PLAIN)

    def test_sparkmagic_command_failure_shows_the_exception(self, sparkmagic_session):
        success, text, mimetype = Command("raise ValueError('no good value')").execute(sparkmagic_session)
        assert success is False
        assert mimetype == MIMETYPE_TEXT_PLAIN
        # sparkmagic shows evalue, a newline, then the traceback.
        assert text.startswith("no good value\n")
        assert "ValueError" in text
        assert Command("'still here'").execute(sparkmagic_session)[:2] == (True, "'still here'")

    def test_sparkmagic_sql_query_gives_a_dataframe(self, sparkmagic_session):
        frame = SQLQuery("SELECT 1 AS a UNION ALL SELECT 2").execute(sparkmagic_session)
        pandas.testing.assert_frame_equal(frame.sort_values("a").reset_index(drop=True),
                                          pandas.DataFrame({"a": [1, 2]}))
        wide = SQLQuery("SELECT 'x' AS name, 1.5 AS score, true AS ok", maxrows=10).execute(sparkmagic_session)
        assert wide.to_dict("records") == [{"name": "x", "score": 1.5, "ok": True}]
        sampled = SQLQuery("SELECT id FROM range(100)", samplemethod="sample", samplefraction=1.0,
                           maxrows=-1).execute(sparkmagic_session)
        assert sorted(sampled["id"]) == list(range(100))

    def test_sparkmagic_sql_query_error(self, sparkmagic_session):
        with pytest.raises(BadUserDataException) as raised:
            SQLQuery("SELECT * FROM no_such_table_here").execute(sparkmagic_session)
        assert "no_such_table_here" in str(raised.value)

    def test_sparkmagic_session_info_logs_and_heartbeat(self, hearth, sparkmagic_controller, sparkmagic_session):
        session = sparkmagic_session
        assert session.get_app_id()
        assert session.get_user() is None  # neither proxyUser nor owner is set
        assert session.get_driver_log_url() is None
        logs = session.get_logs()  # %%logs: GET /sessions/<id>/log?from=0
        assert isinstance(logs, str) and logs
        session.refresh_status_and_info()
        assert session.status == "idle"
        # The heartbeat thread refreshes the session in the background (every 0.5 s here).
        before = session.http_client.background_gets
        wait_until(lambda: session.http_client.background_gets >= before + 2, 30, "two heartbeat refreshes")
        # %%info: GET /sessions, then GET /sessions/<id> for each pyspark/spark/sparkr session.
        infos = sparkmagic_controller.get_all_sessions_endpoint_info(session.endpoint)
        mine = [line for line in infos if line.startswith(f"Session id: {session.id}\t")]
        assert len(mine) == 1 and "Kind: pyspark" in mine[0] and "State: idle" in mine[0]

    def test_sparkmagic_delete_ends_the_session(self, hearth, sparkmagic_controller, sparkmagic_session):
        # Last sparkmagic test: %%delete of the module's session.
        session = sparkmagic_session
        session_id = session.id
        sparkmagic_controller.delete_session_by_name("main")  # LivySession.delete(): DELETE /sessions/<id>
        assert ("DELETE", f"/sessions/{session_id}", 200) in session.http_client.answers
        assert session.id == -1 and session.status == "dead"
        assert hearth.get(f"/sessions/{session_id}").status_code == 404
        assert session_id not in session_ids(hearth)
        # Deleting it again (as %%cleanup may): Hearth's 404 is one of the codes sparkmagic accepts.
        session.http_client.delete_session(session_id)
        assert ("DELETE", f"/sessions/{session_id}", 404) in session.http_client.answers
