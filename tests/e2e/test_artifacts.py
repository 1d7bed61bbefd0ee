"""Jars, Python files and files handed to a running session: uploaded or added by URI."""
import os
import subprocess
import uuid

import pytest

from hearth_harness import ok_text as text, scoped_session

CONF = {"spark.ui.enabled": "false"}


@pytest.fixture(scope="module")
def session(hearth):
    with scoped_session(hearth, {"kind": "pyspark", "name": f"e2e-art-{uuid.uuid4().hex[:8]}",
                                 "conf": CONF}) as s:
        s.wait_idle()
        yield s


def build_jar(directory, greeting):
    """A jar with class demo.Greeter whose greet() returns `greeting`, made with the JDK."""
    src = os.path.join(directory, "demo")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "Greeter.java"), "w") as f:
        f.write('package demo;\npublic class Greeter {\n'
                f'  public static String greet() {{ return "{greeting}"; }}\n}}\n')
    subprocess.run(["javac", "--release", "17", "-d", directory, os.path.join(src, "Greeter.java")], check=True)
    jar = os.path.join(directory, "greeter.jar")
    subprocess.run(["jar", "cf", jar, "-C", directory, "demo/Greeter.class"], check=True)
    return jar


def test_an_uploaded_python_file_is_importable(session):
    module = f"helpers_{uuid.uuid4().hex[:8]}"
    files = {"file": (f"{module}.py", b"def hello():\n    return 'hi from an upload'\n")}
    r = session.server.post(f"/sessions/{session.id}/upload-pyfile", files=files)
    assert r.status_code == 200, r.text
    assert text(session.run(f"import {module}\n{module}.hello()")) == "'hi from an upload'"


def test_an_uploaded_jar_is_usable_from_scala(session, tmp_path):
    jar = build_jar(str(tmp_path), "hello from a jar")
    with open(jar, "rb") as f:
        r = session.server.post(f"/sessions/{session.id}/upload-jar", files={"jar": ("greeter.jar", f.read())})
    assert r.status_code == 200, r.text
    assert "hello from a jar" in text(session.run("demo.Greeter.greet()", kind="spark"))


def test_an_uploaded_file_reaches_spark_files(session):
    r = session.server.post(f"/sessions/{session.id}/upload-file", files={"file": ("notes.txt", b"spark files work")})
    assert r.status_code == 200, r.text
    code = "from pyspark import SparkFiles\nopen(SparkFiles.get('notes.txt')).read()"
    assert text(session.run(code)) == "'spark files work'"


def test_add_pyfile_by_local_uri_below_the_whitelist(hearth, session):
    module = f"shared_{uuid.uuid4().hex[:8]}"
    path = os.path.join(hearth.shared_dir, f"{module}.py")
    with open(path, "w") as f:
        f.write("VALUE = 42\n")
    r = hearth.post(f"/sessions/{session.id}/add-pyfile", json={"uri": "file://" + path})
    assert r.status_code == 200, r.text
    assert text(session.run(f"import {module}\n{module}.VALUE")) == "42"


def test_bad_artifact_requests_are_refused_clearly(hearth, session):
    outside = hearth.post(f"/sessions/{session.id}/add-jar", json={"uri": "file:///etc/passwd"})
    assert outside.status_code == 400
    assert outside.json() == {"msg": "Local path file:///etc/passwd cannot be added to user sessions."}
    relative = hearth.post(f"/sessions/{session.id}/add-file", json={"uri": "relative/path.txt"})
    assert relative.status_code == 400
    no_file = hearth.post(f"/sessions/{session.id}/upload-jar", files={"other": ("x", b"x")})
    assert no_file.status_code == 400 and no_file.json() == {"msg": "No jar sent!"}
    missing = hearth.post(f"/sessions/{session.id}/add-file",
                          json={"uri": "file://" + os.path.join(hearth.shared_dir, "missing.txt")})
    assert missing.status_code == 400 and missing.json()["msg"]
    # The session is still fine.
    assert text(session.run("1+1")) == "2"
