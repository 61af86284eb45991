"""One listening socket per worker process, bound with SO_REUSEPORT, so the kernel spreads new
connections over the workers.

uvicorn's supervisor binds one socket and hands it to every worker; whichever worker wakes first
accepts a whole burst of connections. Under 16 keep-alive clients of cold renders one worker often
took all of them, with its render threads busy while the other worker's sat idle: 26-27 renders/s
against 28.5-30 when the clients happened to split (benchmarks/compare.py, 800w JPEG). With a
socket per worker in one SO_REUSEPORT group, the kernel hashes each connection to one of them.

`PerWorker` stands in for the socket in the list uvicorn's supervisor gives each worker process:
pickled on the way into the spawned child, it arrives there as a new socket bound to the address.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

BACKLOG = 2048  # uvicorn's default


def available() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def check_free(host: str, port: int) -> None:
    """Raise OSError when something listens on host:port already. Bound without SO_REUSEPORT, so
    another server in its own reuse-port group (a second `edge serve` on the port, say) counts too."""
    family, address = _address(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is free
        probe.bind(address)


def listener(host: str, port: int) -> socket.socket:
    """A socket listening on host:port in the port's SO_REUSEPORT group."""
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class PerWorker:
    """Becomes `listener(host, port)` in the process that unpickles it (each spawned worker)."""

    host: str
    port: int

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (listener, (self.host, self.port))


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, port)
