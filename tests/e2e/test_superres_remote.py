"""The remote super-resolution backend against a real v2 inference server (KServe's Python server
running the bundled ONNX files, tests.support.inference): the model's pixels from the server, several
tiles per request, the budget when the server hangs, the fallbacks and the recovery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from origin.masters.index import version_hash
from origin.superres.registry import available_models
from tests.support.app import InProcess, start_app, stop_app
from tests.support.corpus import CORPUS
from tests.support.images import decode
from tests.support.inference import InferenceServer, Unavailable, start_inference_server
from tests.support.metrics import scrape, value
from tests.support.server import free_port

MASTER = "flower_640x427.jpg"  # x2 from 640x427: 2 x 2 tiles of the model's 384 px
X2 = next(m for m in available_models() if m.scale == 2)


def v(master: str) -> str:
    """The master's version for its URL: versioned renditions are the immutable ones."""
    return version_hash((CORPUS / master).read_bytes())[:16]


@pytest.fixture(scope="module")
def inference(tmp_path_factory: pytest.TempPathFactory):
    try:
        server = start_inference_server(tmp_path_factory.mktemp("inference"))
    except Unavailable as e:
        pytest.skip(f"no KServe environment: {e}")
    yield server
    server.stop()


def remote_app(tmp: Path, url: str, **settings: str) -> InProcess:
    env = {"EDGE_SUPERRES_BACKEND": "remote", "EDGE_SUPERRES_URL": url, "EDGE_SUPERRES_BUDGET_S": "60"}
    return start_app(tmp, env | {f"EDGE_SUPERRES_{k.upper()}": v for k, v in settings.items()})


def pixels_differ_by(a: bytes, b: bytes) -> int:
    x, y = decode(a), decode(b)
    assert (x.width, x.height, x.bands) == (y.width, y.height, y.bands)
    return int((x - y).abs().max())


def test_a_high_dpr_miss_is_made_on_the_server_with_the_local_pixels(inference: InferenceServer, tmp_path: Path):
    remote, local = remote_app(tmp_path / "remote", inference.url), start_app(tmp_path / "local")
    try:
        url_options = {"w": 600, "dpr": 2, "fm": "png", "v": v(MASTER)}
        made = remote.get(remote.url(MASTER, **url_options), timeout=120)
        assert made.status_code == 200, made.text
        assert made.headers["x-upscale"] == X2.label
        assert made.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert inference.batches(X2.path.stem) == [(4, 3, 232, 338)]  # all four tiles in one request
        reference = local.get(local.url(MASTER, **url_options), timeout=120)
        assert reference.headers["x-upscale"] == X2.label
        assert made.headers["etag"] == reference.headers["etag"]  # one cache entry whichever backend ran
        assert pixels_differ_by(made.content, reference.content) <= 1
        samples = scrape(remote)
        assert value(samples, "edge_superres_remote_requests_total", outcome="ok") == 1
        assert value(samples, "edge_superres_remote_tiles_total") == 4
    finally:
        stop_app(remote)
        stop_app(local)


def test_a_hung_server_costs_the_budget_then_lanczos_and_it_is_used_again_when_back(
    inference: InferenceServer, tmp_path: Path
):
    # Three masters: the upscaled region of one would be reused for its other widths.
    app = remote_app(tmp_path, inference.url, budget_s="2.5", remote_failures="1", remote_retry_s="1")
    try:
        warm = app.get(app.url("rocket_640x427.jpg", w=600, dpr=2, fm="webp"), timeout=120)  # the server answers
        assert warm.headers["x-upscale"] == X2.label
        inference.pause()
        try:
            started = time.monotonic()
            hung = app.get(app.url(MASTER, w=600, dpr=2, fm="webp"), timeout=120)
            took = time.monotonic() - started
        finally:
            inference.resume()
        assert hung.status_code == 200
        assert took < 2.5 + 2, took  # the budget, then a Lanczos render
        assert hung.headers["x-upscale"] == "lanczos"  # the local model would not fit what was left
        assert hung.headers["cache-control"] == "private, no-cache"
        assert value(scrape(app), "edge_superres_remote_requests_total", outcome="timeout") >= 1
        time.sleep(1.1)  # the circuit's retry_s: then one request tries the server again
        before = len(inference.batches(X2.path.stem))
        reference = "srgb_reference_640x400.jpg"
        back = app.get(app.url(reference, w=600, dpr=2, fm="webp", v=v(reference)), timeout=120)
        assert back.headers["x-upscale"] == X2.label
        assert back.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(inference.batches(X2.path.stem)) > before  # the server made it
    finally:
        stop_app(app)


def test_a_stopped_server_leaves_the_local_model_and_is_used_again_when_it_is_back(tmp_path: Path):
    server = start_inference_server(tmp_path / "first")
    port = server.url.rsplit(":", 1)[1]
    app = remote_app(tmp_path / "app", server.url, remote_failures="1", remote_retry_s="0.5")
    try:
        server.stop()
        local = app.get(app.url(MASTER, w=600, dpr=2, fm="png", v=v(MASTER)), timeout=120)
        assert local.headers["x-upscale"] == X2.label  # refused at once: the local model had time
        assert local.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert value(scrape(app), "edge_superres_remote_requests_total", outcome="error") == 1
        server = start_inference_server(tmp_path / "second", port=int(port))
        time.sleep(0.6)  # retry_s: the next upscale tries the server again
        back = app.get(app.url("srgb_reference_640x400.jpg", w=600, dpr=2, fm="png"), timeout=120)
        assert back.headers["x-upscale"] == X2.label
        assert len(server.batches(X2.path.stem)) == 1  # the new server made it
    finally:
        stop_app(app)
        server.stop()


def test_a_server_that_is_not_there_on_a_tiny_budget_leaves_lanczos(tmp_path: Path):
    app = remote_app(tmp_path, f"http://127.0.0.1:{free_port()}", budget_s="0.05")
    try:
        stand_in = app.get(app.url(MASTER, w=600, dpr=2, fm="png", v=v(MASTER)), timeout=120)
        assert stand_in.headers["x-upscale"] == "lanczos"  # the local model would not fit 50 ms
        assert stand_in.headers["cache-control"] == "private, no-cache"
        # Refused at once, or (on a busy machine) the 50 ms gone before the connection was tried.
        samples = scrape(app)
        tried = [value(samples, "edge_superres_remote_requests_total", outcome=o) for o in ("error", "timeout")]
        assert sum(tried) == 1, tried
    finally:
        stop_app(app)


def test_an_answer_that_is_not_the_model_is_refused(inference: InferenceServer, tmp_path: Path):
    """The x4 model served under the x2 model's name: the right names and types, the wrong
    picture size. Counted as garbage; the local model makes the rendition."""
    x4 = next(m for m in available_models() if m.scale == 4)
    app = remote_app(tmp_path, inference.url, remote_models=f"{X2.name}={x4.path.stem}")
    try:
        r = app.get(app.url(MASTER, w=540, dpr=2, fm="png"), timeout=120)
        assert r.status_code == 200 and r.headers["x-upscale"] == X2.label
        assert value(scrape(app), "edge_superres_remote_requests_total", outcome="garbage") == 1
    finally:
        stop_app(app)
