"""`edge serve --workers 2`, run for real: the workers share the disk tier and render a key once
between them, /metrics sums every worker, a worker that dies is replaced, and no worker outlives
a supervisor killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.metrics import scrape, value
from tests.support.server import Server, start_server, stop_server


def workers_of(server: Server) -> list[int]:
    """The supervisor's child processes (uvicorn's workers), by /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server.process.pid and "spawn" in Path(
                f"/proc/{entry}/cmdline"
            ).read_text(errors="replace"):
                children.append(int(entry))
    return children


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("workers"), {"EDGE_SERVER_WORKERS": "2"})
    deadline = time.monotonic() + 30
    while len(workers_of(srv)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    yield srv
    stop_server(srv)


def fresh_get(url: str) -> httpx.Response:
    """One request on its own connection, so the kernel may hand it to either worker."""
    return httpx.get(url, timeout=60, headers={"Connection": "close"})


def test_concurrent_misses_across_workers_render_once_and_metrics_add_up(two: Server):
    assert len(workers_of(two)) == 2
    url = two.url("flower_640x427.jpg", w=333, fm="webp")
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: fresh_get(url), range(12)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.headers["etag"] for r in answers}) == 1 and len({r.content for r in answers}) == 1
    samples = scrape(two)
    assert value(samples, "edge_renders_total", format="webp") == 1  # one render for both workers

    # Summed over workers; each writes its per-request counts once a second (edge.metrics), so the
    # family may not even exist in the first scrape.
    def answered() -> float:
        samples = scrape(two)
        return (
            value(samples, "edge_requests_total", status="200", format="webp")
            if "edge_requests" in samples.families
            else 0
        )

    deadline = time.monotonic() + 5
    while answered() < 12 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answered() >= 12
    for _ in range(20):
        assert fresh_get(url).status_code == 200
    assert value(scrape(two), "edge_renders_total", format="webp") == 1


def tcp_sockets(port: int, state: str) -> dict[int, int]:
    """inode -> local port of this machine's IPv4 TCP sockets in `state` (0A listen, 01 established)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, st, inode = fields[1], fields[3], int(fields[9])
        if st == state and int(local.rsplit(":", 1)[1], 16) == port:
            found[inode] = port
    return found


def held_by(pid: int, inodes: dict[int, int]) -> int:
    """How many of `inodes` process `pid` has open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and int(target[8:-1]) in inodes:
            count += 1
    return count


def test_each_worker_listens_on_its_own_socket_and_keep_alive_clients_spread_over_them(two: Server):
    """One socket per worker (SO_REUSEPORT): the kernel hands each new connection to one of them, so
    a burst of keep-alive clients does not all land on the worker that woke first."""
    port = int(two.base.rsplit(":", 1)[1])
    workers = workers_of(two)
    listening = tcp_sockets(port, "0A")
    assert len(listening) == 2  # two sockets (one shared by both would be one)
    assert sorted(held_by(pid, listening) for pid in workers) == [1, 1]
    clients = [httpx.Client(base_url=two.base, timeout=30) for _ in range(32)]
    try:
        with ThreadPoolExecutor(32) as pool:  # connecting all at once, as a load generator does
            assert set(pool.map(lambda c: c.get("/healthz").status_code, clients)) == {200}
        established = tcp_sockets(port, "01")  # the server's ends: local port = the server's
        per_worker = [held_by(pid, established) for pid in workers]
        assert sum(per_worker) == 32 and min(per_worker) > 0, per_worker
    finally:
        for c in clients:
            c.close()


def test_an_upgrade_made_by_one_worker_reaches_the_other(tmp_path: Path):
    """Both workers serve the provisional WebP; one makes its better encode while idle; then
    every connection, whichever worker takes it, gets the same final bytes (the other worker's
    memory tier gives way to the shared disk tier), and the upgrade was made once."""
    srv = start_server(tmp_path, {"EDGE_SERVER_WORKERS": "2", "EDGE_ENCODE_UPGRADES": "true"})
    try:
        url = srv.url("flower_640x427.jpg", w=420, fm="webp")
        first = [fresh_get(url) for _ in range(8)]
        assert all(r.status_code == 200 and "provisional" in r.headers["etag"] for r in first[:1])
        deadline, final = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            final = [fresh_get(url) for _ in range(8)]
            if all("provisional" not in r.headers["etag"] for r in final):
                break
            time.sleep(0.3)
        assert {r.headers["cache-control"] for r in final} == {"public, max-age=300, stale-while-revalidate=86400"}
        assert len({r.content for r in final}) == 1 and len(final[0].content) < len(first[0].content)
        samples = scrape(srv)
        assert value(samples, "edge_encode_upgrades_total", format="webp", result="better") == 1
        assert value(samples, "edge_renders_total", format="webp") == 2  # the fast one and its upgrade
    finally:
        stop_server(srv)


def test_a_dead_worker_is_replaced_and_hits_keep_coming(two: Server):
    url = two.url("rocket_640x427.jpg", w=120, fm="jpeg")
    assert fresh_get(url).status_code == 200
    victim = workers_of(two)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = workers_of(two)
        if len(alive) == 2 and victim not in alive:
            break
        time.sleep(0.2)
    assert len(workers_of(two)) == 2 and victim not in workers_of(two)
    assert all(fresh_get(url).status_code == 200 for _ in range(10))


def test_no_worker_outlives_a_killed_supervisor(tmp_path: Path):
    srv = start_server(tmp_path, {"EDGE_SERVER_WORKERS": "2"})
    deadline = time.monotonic() + 30
    while len(workers_of(srv)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    children = workers_of(srv)
    assert len(children) == 2
    os.kill(srv.process.pid, signal.SIGKILL)
    srv.process.wait(10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    with pytest.raises(httpx.HTTPError):
        httpx.get(srv.base + "/healthz", timeout=2)
