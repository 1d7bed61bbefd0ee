"""Fixtures shared by the Python suites: one Redis and one hearth-server per suite."""
import pytest

from hearth_harness import HearthServer, Redis


@pytest.fixture(scope="session")
def redis_server():
    redis = Redis()
    yield redis
    redis.stop()


@pytest.fixture(scope="session")
def hearth(redis_server):
    server = HearthServer(redis_server.url)
    yield server
    code = server.stop()
    assert code == 0, f"hearth-server did not stop cleanly (exit code {code}):\n{server.output()}"



@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "hearth" in item.funcargs:
        report.sections.append(("hearth-server output", item.funcargs["hearth"].output()))
