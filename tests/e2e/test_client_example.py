"""The C++ client library's example program (clients/examples) against a real hearth-server and
a real Spark driver, over the ZeroMQ client channel: it creates a session, waits for it to be
idle on pushed events, runs a statement printing the pushed progress, prints the result and
deletes the session."""
import os
import re
import subprocess

HEARTH_CLIENT_EXAMPLE = os.environ.get("HEARTH_CLIENT_EXAMPLE", "")


def test_the_example_runs_a_statement_with_progress_and_deletes_its_session(hearth):
    assert HEARTH_CLIENT_EXAMPLE, "HEARTH_CLIENT_EXAMPLE is not set (run the tests through ctest)"
    done = subprocess.run(
        [HEARTH_CLIENT_EXAMPLE, "--server", hearth.client_address,
         "spark.range(0, 1000, 1, 4).selectExpr('sum(id)').collect()[0][0]"],
        capture_output=True, text=True, timeout=300)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    created = re.fullmatch(r"session (\d+) created \(\w+\)", lines[0])
    assert created, lines
    updates = [line for line in lines if line.startswith("statement ")]
    assert any(" running " in line for line in updates), updates
    assert updates[-1].endswith("available 100%"), updates
    assert lines[-1] == "499500"
    assert hearth.get(f"/sessions/{created.group(1)}").status_code == 404

