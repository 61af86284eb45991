"""How many CPUs the server sizes its workers and threads for: the affinity mask, capped by a
cgroup CPU quota (a container limited to 2 CPUs on a 64-core node must not start 64 threads)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import pyvips

from edge.config import load_config
from edge.services import build_services
from origin.core import concurrency
from origin.imaging import runtime
from origin.imaging.runtime import tune_process
from tests.support.corpus import CORPUS, TEST_ENV


def quota_files(monkeypatch: pytest.MonkeyPatch, *pairs: tuple[Path, Path | None]) -> None:
    monkeypatch.setattr(concurrency, "CGROUP_QUOTAS", tuple((str(q), str(p) if p else None) for q, p in pairs))


def test_cgroup_v2_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cpu_max = tmp_path / "cpu.max"
    quota_files(monkeypatch, (cpu_max, None))
    cpu_max.write_text("150000 100000\n")
    assert concurrency.cgroup_cpu_quota() == 1.5
    assert concurrency.cpu_count() == min(2, len(os.sched_getaffinity(0)))  # 1.5 CPUs: 2 threads
    cpu_max.write_text("50000 100000\n")
    assert concurrency.cpu_count() == 1
    cpu_max.write_text("max 100000\n")
    assert concurrency.cgroup_cpu_quota() is None
    assert concurrency.cpu_count() == len(os.sched_getaffinity(0))


def test_cgroup_v1_quota_and_no_cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    quota, period = tmp_path / "cfs_quota_us", tmp_path / "cfs_period_us"
    quota.write_text("100000\n")
    period.write_text("100000\n")
    quota_files(monkeypatch, (tmp_path / "absent-v2", None), (quota, period))
    assert concurrency.cgroup_cpu_quota() == 1.0 and concurrency.cpu_count() == 1
    quota.write_text("-1\n")
    assert concurrency.cgroup_cpu_quota() is None
    quota_files(monkeypatch, (tmp_path / "none", None))
    assert concurrency.cgroup_cpu_quota() is None and concurrency.cpu_count() >= 1


def test_a_process_limited_to_one_cpu_sizes_every_pool_to_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Render threads, libvips' thread pools and onnxruntime's threads all follow the quota."""
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    quota_files(monkeypatch, (cpu_max, None))
    monkeypatch.delenv("VIPS_CONCURRENCY", raising=False)
    before = pyvips.concurrency_get()
    try:
        tune_process(0)
        assert pyvips.concurrency_get() == 1
        env = {**TEST_ENV, "EDGE_MASTERS": str(CORPUS), "EDGE_CACHE_DIR": str(tmp_path / "cache")}
        services = build_services(load_config(env=env))
        try:
            assert services.renditions.renderer.pool.workers == 1
            upscaler = services.renditions.renderer.superres
            assert upscaler is None or upscaler.upscaler.threads == 1
        finally:
            asyncio.run(services.close())
    finally:
        pyvips.concurrency_set(before)


def test_libvips_threads_are_the_cores_left_per_render_at_once(monkeypatch: pytest.MonkeyPatch):
    """Every render thread of every worker busy: no more libvips threads than cores in all."""
    monkeypatch.delenv("VIPS_CONCURRENCY", raising=False)
    monkeypatch.setattr(runtime, "cpu_count", lambda: 8)
    before = pyvips.concurrency_get()
    try:
        assert runtime.share_cores(2) == 4  # one worker of two render threads on 8 cores
        assert runtime.share_cores(8) == 1  # four workers of two
        assert runtime.share_cores(16) == 1  # never none
        monkeypatch.setenv("VIPS_CONCURRENCY", "3")
        pyvips.concurrency_set(3)
        assert runtime.share_cores(8) == 3  # the operator's setting wins
    finally:
        pyvips.concurrency_set(before)
