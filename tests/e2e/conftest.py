from conftest_common import hearth, pytest_runtest_makereport, redis_server  # noqa: F401
