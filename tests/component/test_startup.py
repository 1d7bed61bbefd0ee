"""What an operator sees when the server cannot start: a port that is taken is named with the
process holding it, and the server exits at once instead of hanging."""
import os
import socket

import pytest

from hearth_harness import run_server_until_exit


@pytest.fixture
def held_port():
    """A port this test process listens on (as a driver that inherited the server's socket
    would, or any other program)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def own_command_name():
    with open("/proc/self/comm") as comm:
        return comm.read().strip()


@pytest.mark.parametrize("flag, purpose", [("--port", "REST"),
                                           ("--client-port", "the client channel"),
                                           ("--driver-port", "the driver channel")])
def test_a_port_in_use_is_named_with_its_holder_and_the_server_exits(redis_server, held_port, flag,
                                                                       purpose):
    code, output = run_server_until_exit(redis_server.url, flag, str(held_port), timeout=30)
    assert code != 0, output
    expected = (f"hearth-server: cannot listen on 127.0.0.1:{held_port} for {purpose}: address already in use"
                f" (held by pid {os.getpid()}, {own_command_name()})")
    assert expected in output.splitlines(), output
    assert output.count("cannot listen") == 1, output
    assert "listening on" not in output, output
