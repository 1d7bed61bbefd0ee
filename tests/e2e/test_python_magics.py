"""Livy's Python magics (%json, %table, %matplot) and image output, on one pyspark session with a
real Spark driver."""
import base64
import uuid

import pytest

from hearth_harness import error_output as error, ok_data as ok, scoped_session

CONF = {"spark.ui.enabled": "false"}
TABLE = "application/vnd.livy.table.v1+json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def session(hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-magic-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle()
        yield s


def test_json_magic_shows_a_value_as_application_json(session):
    data = ok(session.run("d = {'name': 'hearth', 'sizes': [1, 2.5], 'ok': True, 'none': None}\n"
                          "%json d"))
    assert data == {"application/json": {"name": "hearth", "sizes": [1, 2.5], "ok": True,
                                         "none": None}}


def test_json_magic_of_a_value_json_cannot_encode_is_an_error(session):
    out = error(session.run("unencodable = {'when': object()}\n%json unencodable"))
    assert out["ename"] == "TypeError" and "not JSON serializable" in out["evalue"]
    missing = error(session.run("%json no_such_name"))
    assert (missing["ename"], missing["evalue"], missing["traceback"]) == (
        "KeyError", "'no_such_name'", ["KeyError: 'no_such_name'\n"])


def test_table_magic_of_dict_rows_has_sorted_headers_and_livy_types(session):
    data = ok(session.run(
        "import datetime\n"
        "rows = [{'name': 'a', 'n': 1, 'x': 0.5, 'flag': True, 'day': datetime.date(2024, 1, 2),\n"
        "         'tags': ['p', 'q'], 'attrs': {'k': 1}, 'gone': None},\n"
        "        {'name': 'b', 'n': 2, 'x': None, 'flag': False,\n"
        "         'day': datetime.date(2024, 1, 3),\n"
        "         'tags': [], 'attrs': {}, 'gone': None}]\n"
        "%table rows"))
    assert data == {TABLE: {
        "headers": [
            {"name": "attrs", "type": "MAP_TYPE"},
            {"name": "day", "type": "DATE_TYPE"},
            {"name": "flag", "type": "BOOLEAN_TYPE"},
            {"name": "gone", "type": "NULL_TYPE"},
            {"name": "n", "type": "INT_TYPE"},
            {"name": "name", "type": "STRING_TYPE"},
            {"name": "tags", "type": "ARRAY_TYPE"},
            {"name": "x", "type": "DOUBLE_TYPE"},
        ],
        "data": [
            [{"k": 1}, "2024-01-02", True, None, 1, "a", ["p", "q"], 0.5],
            [{}, "2024-01-03", False, None, 2, "b", [], None],
        ],
    }}


def test_table_magic_of_list_rows_and_spark_rows(session):
    data = ok(session.run("pairs = [(1, 'a'), [3, 'b']]\n%table pairs"))
    assert data == {TABLE: {"headers": [{"name": "0", "type": "INT_TYPE"},
                                        {"name": "1", "type": "STRING_TYPE"}],
                            "data": [[1, "a"], [3, "b"]]}}
    data = ok(session.run("collected = spark.range(2)"
                          ".selectExpr('id', 'cast(id as double) * 1.5 as half').collect()\n"
                          "%table collected"))
    assert data == {TABLE: {"headers": [{"name": "half", "type": "DOUBLE_TYPE"},
                                        {"name": "id", "type": "INT_TYPE"}],
                            "data": [[0.0, 0], [1.5, 1]]}}


def test_table_magic_with_mixed_column_types_is_an_error(session):
    out = error(session.run("mixed = [[1, 2], [3, 'b']]\n%table mixed"))
    assert (out["ename"], out["evalue"], out["traceback"]) == (
        "Exception", "table rows have different types",
        ["Exception: table rows have different types\n"])


def test_matplot_magic_returns_the_figure_as_base64_png(session):
    data = ok(session.run("import matplotlib.pyplot as plt\n"
                          "_ = plt.plot([1, 2, 3], [3, 1, 2])\n"
                          "%matplot plt"))
    assert set(data) == {"image/png", "text/plain"}
    assert data["text/plain"] == ""
    assert base64.b64decode(data["image/png"], validate=True).startswith(PNG_SIGNATURE)


def test_unknown_magic_is_an_unknown_magic_error(session):
    out = error(session.run("%nosuchmagic x"))
    assert (out["ename"], out["evalue"], out["traceback"]) == (
        "UnknownMagic", "unknown magic command 'nosuchmagic'",
        ["UnknownMagic: unknown magic command 'nosuchmagic'\n"])


def test_valid_python_is_run_as_before(session):
    # A cell that is valid Python never looks for magics, even with a "%" in it.
    assert ok(session.run("17 % 5")) == {"text/plain": "2"}
    assert ok(session.run("print('%json not a magic')\n1 + 1")) == {
        "text/plain": "%json not a magic\n2"}
    assert ok(session.run("text = '''\n%table x\n'''\ntext.strip()")) == {
        "text/plain": "'%table x'"}
    # Python after a magic line: the last step's output counts, as in Livy.
    assert ok(session.run("v = [1]\n%json v\nv + [2]")) == {"text/plain": "[1, 2]"}
    out = error(session.run("undefined_name_here"))
    assert out["ename"] == "NameError"
    assert out["traceback"] == ["Traceback (most recent call last):\n",
                                "NameError: name 'undefined_name_here' is not defined\n"]
