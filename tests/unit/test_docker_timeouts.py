"""A Docker daemon that does not answer in time: every question DockerHost asks ends in a
DockerError with one line, not in requests' or urllib3's own exceptions (which front ends
would report as an "unexpected error").

The daemon is a real Unix-socket server: it reads requests and answers only the inspection of
one container, so that reading its logs is asked for and then goes unanswered."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bot.adapters.docker_host import DockerHost
from bot.errors import DockerError

CLIENT_TIMEOUT = 1
CONTAINER_JSON = (
    b'{"Id": "abc123", "Name": "/engine-1", "Config": {"Image": "engine:2.4.0", "Labels": {}, "Tty": false}, '
    b'"State": {"Running": true, "Status": "running"}, "Created": "2024-01-01T00:00:00Z"}'
)


class HungDaemon:
    """Answers `GET /…/containers/abc123/json` (so a container can be fetched) and never
    answers anything else."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                return
            request += chunk
        line = request.split(b"\r\n", 1)[0]
        if b"/containers/abc123/json" in line:
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(CONTAINER_JSON)).encode()
                + b"\r\n\r\n"
                + CONTAINER_JSON
            )
            self._answer(connection)
        # anything else: no answer; the connection stays open until the test ends

    def close(self) -> None:
        self.stop.set()
        self.server.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[DockerHost]:
    daemon = HungDaemon(tmp_path / "docker.sock")
    client = docker.DockerClient(base_url=f"unix://{daemon.path}", version="1.43", timeout=CLIENT_TIMEOUT)
    try:
        yield DockerHost(client)
    finally:
        client.close()
        daemon.close()


@pytest.mark.parametrize(
    "ask, says",
    [
        (lambda h, _: h.container("def456"), "cannot inspect container def456"),
        (lambda h, _: h.inspect("def456"), "cannot inspect container def456"),
        (lambda h, _: h.service_container_ids("owners", "engine"), "cannot list the containers of owners/engine"),
        (lambda h, _: h.image_labels("engine:2.3.1"), "cannot inspect image engine:2.3.1"),
        (lambda h, _: h.locate_image("127.0.0.1:5000/engine:2.3.1"), "cannot reach the Docker daemon"),
        (lambda h, _: h.image_tags("127.0.0.1:9/engine"), "cannot list images on this host"),
        (
            lambda h, folder: h.save_logs(["abc123"], folder / "engine.log", 1_000_000),
            "reading the logs of engine-1 failed",
        ),
    ],
    ids=["container", "inspect", "list", "image-labels", "locate", "image-tags", "logs"],
)
def test_a_daemon_that_does_not_answer_is_a_docker_error_with_one_line(
    host: DockerHost, tmp_path: Path, ask: object, says: str
) -> None:
    with pytest.raises(DockerError) as failed:
        ask(host, tmp_path)  # type: ignore[operator]
    message = str(failed.value)
    assert message.startswith(says), message
    assert "did not answer in time" in message and "\n" not in message
