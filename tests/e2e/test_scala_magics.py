"""Livy's Scala magics (%json, %table) and Scala completion, on one spark (Scala) session with a
real Spark driver."""
import uuid

import pytest

from hearth_harness import error_output as error, ok_data as ok, scoped_session

CONF = {"spark.ui.enabled": "false"}
TABLE = "application/vnd.livy.table.v1+json"


@pytest.fixture(scope="module")
def session(hearth):
    with scoped_session(hearth, {"kind": "spark", "name": f"e2e-scala-magic-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle()
        yield s


def test_json_magic_of_a_map(session):
    data = ok(session.run('val m = Map("name" -> "hearth", "size" -> 3)\n%json m'))
    assert data == {"application/json": {"name": "hearth", "size": 3}}


def test_json_magic_of_a_list_expression(session):
    data = ok(session.run('%json List(1, 2, 3).map(_ * 2)'))
    assert data == {"application/json": [2, 4, 6]}


def test_json_magic_of_a_case_class_and_options(session):
    ok(session.run("case class Pet(name: String, age: Int, owner: Option[String])"))
    data = ok(session.run('%json Seq(Pet("rex", 3, None), Pet("tom", 5, Some("ann")))'))
    assert data == {"application/json": [{"name": "rex", "age": 3, "owner": None},
                                         {"name": "tom", "age": 5, "owner": "ann"}]}


def test_table_magic_of_a_seq_of_tuples(session):
    data = ok(session.run('val rows = Seq((1, "a"), (2, "b"))\n%table rows'))
    assert data == {TABLE: {"headers": [{"name": "0", "type": "BIGINT_TYPE"},
                                        {"name": "1", "type": "STRING_TYPE"}],
                            "data": [[1, "a"], [2, "b"]]}}


def test_table_magic_of_maps_has_their_keys_as_headers(session):
    data = ok(session.run('%table Seq(Map("x" -> 1.5, "y" -> 2.0), Map("x" -> 3.0, "y" -> 4.0))'))
    assert data == {TABLE: {"headers": [{"name": "x", "type": "DOUBLE_TYPE"},
                                        {"name": "y", "type": "DOUBLE_TYPE"}],
                            "data": [[1.5, 2.0], [3.0, 4.0]]}}


def test_table_magic_of_an_rdd_takes_ten_rows(session):
    data = ok(session.run("val rdd = sc.parallelize(1 to 100, 2).map(i => (i, i % 2 == 0))\n%table rdd"))
    table = data[TABLE]
    assert table["headers"] == [{"name": "0", "type": "BIGINT_TYPE"},
                                {"name": "1", "type": "BOOLEAN_TYPE"}]
    assert table["data"] == [[i, i % 2 == 0] for i in range(1, 11)]


def test_table_magic_of_a_dataframe_uses_its_schema(session):
    data = ok(session.run('%table spark.range(3).selectExpr("id", "cast(id as string) as s")'))
    assert data == {TABLE: {"headers": [{"name": "id", "type": "BIGINT_TYPE"},
                                        {"name": "s", "type": "STRING_TYPE"}],
                            "data": [[0, "0"], [1, "1"], [2, "2"]]}}


def test_table_magic_with_mixed_column_types_is_an_error(session):
    out = error(session.run('%table Seq(Seq(1), Seq("a"))'))
    assert (out["ename"], out["evalue"]) == ("TypeError", "table rows have different types")


def test_unknown_magic_is_an_error(session):
    out = error(session.run("%nosuch m"))
    assert out["ename"] == "UnknownMagic"
    assert out["evalue"] == "unknown magic command 'nosuch'"


def test_magic_of_a_missing_name_is_a_name_error(session):
    out = error(session.run("%json no_such_value_here"))
    assert (out["ename"], out["evalue"]) == ("NameError", "Value no_such_value_here does not exist")


def test_a_line_after_a_magic_gives_the_text(session):
    data = ok(session.run("%json m\nval after = 1 + 2"))
    assert data == {"text/plain": "val after: Int = 3\n"}


def test_normal_statements_still_work(session):
    data = ok(session.run("val answer = 40 + 2"))
    assert data == {"text/plain": "val answer: Int = 42\n"}
    out = error(session.run("val broken: Int = \"text\""))
    assert out["ename"] == "Error"


def test_scala_completion(session):
    r = session.server.post(f"/sessions/{session.id}/completion",
                            json={"code": "spark.ran", "kind": "spark", "cursor": 9})
    assert r.status_code == 200, r.text
    assert "range" in r.json()["candidates"]
