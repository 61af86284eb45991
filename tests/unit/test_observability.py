"""Metrics, health and access logs, as an operator sees them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.app import InProcess, start_app, stop_app
from tests.support.metrics import scrape, value


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory):
    srv = start_app(tmp_path_factory.mktemp("observed"))
    yield srv
    stop_app(srv)


def test_metric_names_follow_prometheus_conventions(fresh: InProcess):
    text = fresh.get(fresh.base + "/metrics").text
    families = {f.name: f.type for f in text_string_to_metric_families(text) if f.name.startswith("edge_")}
    assert {"edge_requests", "edge_renders", "edge_cache_lookups", "edge_render_queue_depth"} <= set(families)
    for name, kind in families.items():
        if kind == "counter":
            assert f"{name}_total" in text, name
        elif kind == "histogram":
            assert name.endswith("_seconds"), name


def test_a_miss_then_a_hit_move_the_counters(fresh: InProcess):
    url = fresh.url("flower_640x427.jpg", w=123, fm="webp")
    before = scrape(fresh)
    fresh.get(url)
    fresh.get(url)
    after = scrape(fresh)
    assert value(after, "edge_renders_total", format="webp") - value(before, "edge_renders_total", format="webp") == 1
    hits = ("edge_cache_lookups_total", {"tier": "edge-memory", "result": "hit"})
    assert value(after, hits[0], **hits[1]) - value(before, hits[0], **hits[1]) == 1
    ok = ("edge_requests_total", {"status": "200", "format": "webp"})
    assert value(after, ok[0], **ok[1]) - value(before, ok[0], **ok[1]) == 2
    assert value(after, "edge_response_bytes_total", format="webp") > value(
        before, "edge_response_bytes_total", format="webp"
    )
    assert value(after, "edge_render_duration_seconds_count") > value(before, "edge_render_duration_seconds_count")
    # Request durations are written in bulk (edge.metrics.flush): count, sum and buckets still agree.
    hit_count = value(after, "edge_request_duration_seconds_count", cache="hit")
    assert hit_count - value(before, "edge_request_duration_seconds_count", cache="hit") == 1
    assert value(after, "edge_request_duration_seconds_bucket", cache="hit", le="+Inf") == hit_count
    assert 0 < value(after, "edge_request_duration_seconds_sum", cache="hit") < hit_count * 1.0
    buckets = [
        value(after, "edge_request_duration_seconds_bucket", cache="hit", le=le) for le in ("0.001", "0.01", "0.1")
    ]
    assert buckets == sorted(buckets) and buckets[-1] <= hit_count


def test_health_and_readiness(fresh: InProcess, tmp_path: Path):
    assert fresh.get(fresh.base + "/healthz").json() == {"status": "ok"}
    assert fresh.get(fresh.base + "/readyz").status_code == 200
    moved = tmp_path / "moved"
    shutil.move(fresh.masters, moved)
    try:
        r = fresh.get(fresh.base + "/readyz")
        assert r.status_code == 503 and "masters directory" in r.json()["problems"][0]
    finally:
        shutil.move(moved, fresh.masters)
    assert fresh.get(fresh.base + "/readyz").status_code == 200


def test_access_log_is_one_json_line_per_request_with_its_id(fresh: InProcess):
    url = fresh.url("rocket_640x427.jpg", w=99, fm="jpeg")
    miss = fresh.get(url, headers={"X-Request-Id": "trace-abc.1"})
    hit = fresh.get(url)
    assert miss.headers["x-request-id"] == "trace-abc.1"
    assert len(hit.headers["x-request-id"]) == 32
    by_id = logged(fresh, "trace-abc.1", hit.headers["x-request-id"])
    first, second = by_id["trace-abc.1"], by_id[hit.headers["x-request-id"]]
    assert first["status"] == 200 and first["cache"] == "miss" and first["render_ms"] > 0
    assert first["format"] == "jpeg" and first["bytes"] == len(miss.content)
    assert second["cache"] == "hit" and second["render_ms"] is None
    bad = fresh.get(url.replace("w=99", "w=98"))
    assert bad.status_code == 403
    refused = logged(fresh, bad.headers["x-request-id"])[bad.headers["x-request-id"]]
    assert refused["status"] == 403 and refused["cache"] == "none"


def test_every_rendition_made_leaves_one_audit_line_and_is_counted_by_how_it_was_made(fresh: InProcess):
    before = value(scrape(fresh), "edge_renditions_total", upscale="none")
    url = fresh.url("flower_640x427.jpg", w=97, fm="webp", q=61)
    assert fresh.get(url).status_code == 200 and fresh.get(url).status_code == 200  # a miss, then a hit
    lines = [json.loads(line) for line in fresh.log().splitlines() if line.startswith('{"time"')]
    made = [r for r in lines if r.get("event") == "render" and r["master"] == "flower_640x427.jpg" and r["width"] == 97]
    assert len(made) == 1  # the hit made nothing
    [line] = made
    assert line["format"] == "webp" and line["quality"] == 61 and line["upscale"] == "none"
    assert line["version"] and line["key"] and line["bytes"] > 0 and line["ms"]["encode"] > 0
    assert line["source_type"] == "master's"
    assert value(scrape(fresh), "edge_renditions_total", upscale="none") == before + 1


def logged(server: InProcess, *request_ids: str) -> dict[str, dict]:
    """Access-log records by request id, waiting for the ones named: a line is written just after
    its response has gone out, so it can trail the client by a moment."""
    deadline = time.monotonic() + 5
    while True:
        records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        by_id = {r["request_id"]: r for r in records if "request_id" in r}  # not the render audit
        if all(i in by_id for i in request_ids) or time.monotonic() > deadline:
            return by_id
        time.sleep(0.05)


def test_process_metrics_and_each_tiers_size_are_exported(fresh: InProcess):
    assert fresh.get(fresh.url("rocket_640x427.jpg", w=93, fm="jpeg")).status_code == 200
    samples = scrape(fresh)
    assert value(samples, "process_resident_memory_bytes") > 10_000_000
    assert value(samples, "python_gc_collections_total", generation="0") >= 0
    memory, disk = (value(samples, "edge_cache_bytes", tier=t) for t in ("edge-memory", "edge-disk"))
    assert memory > 0 and disk > 0  # the rendition just made is in both


def test_the_provider_each_models_session_really_got_is_exported(fresh: InProcess):
    """edge_superres_provider{model,provider}: on this CPU-only machine, the CPU provider, for the
    model that made the pixels of a rendition past its master."""
    r = fresh.get(fresh.url("chelsea_cat_451x300.png", w=700, fm="jpeg"))
    assert r.status_code == 200
    model = r.headers["x-upscale"] if r.headers["x-upscale"] != "lanczos" else "edgesr-x2@2.0"
    deadline = time.monotonic() + 60  # a budget stand-in: the model runs just after
    while value(scrape(fresh), "edge_superres_provider", model=model, provider="CPUExecutionProvider") != 1:
        assert time.monotonic() < deadline, scrape(fresh).families
        time.sleep(0.2)
