"""What a rendition says about where it came from, read back with exiftool as a publisher would:
the master's rights and IPTC Digital Source Type kept on every path, location dropped, and a
model-made rendition declaring algorithmicallyEnhanced with the software that made it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.superres.registry import available_models
from tests.support.cli import edge
from tests.support.corpus import CORPUS
from tests.support.server import Server, start_server, stop_server

EXIFTOOL = shutil.which("exiftool")
pytestmark = [
    pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (./dev test installs it when root)"),
    pytest.mark.skipif(not available_models(), reason="no super-resolution model is installed"),
]
TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
COPYRIGHT = "(c) 2026 Jane Doe"


def tagged_master(path: Path, source_type: str) -> None:
    """A 300 px photo tagged by exiftool: source type, copyright (EXIF and XMP) and a GPS position."""
    shutil.copy(CORPUS / "progressive_66_scans_320x214.jpg", path)
    subprocess.run(
        [EXIFTOOL, "-q", "-overwrite_original", f"-XMP-iptcExt:DigitalSourceType={TYPES}{source_type}",
         f"-EXIF:Copyright={COPYRIGHT}", f"-XMP-dc:Rights={COPYRIGHT}", "-GPSLatitude=48.8584",
         "-GPSLatitudeRef=N", "-GPSLongitude=2.2945", "-GPSLongitudeRef=E", str(path)],
        check=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("provenance")
    masters = tmp / "masters"
    masters.mkdir()
    tagged_master(masters / "captured.jpg", "digitalCapture")
    tagged_master(masters / "generated.jpg", "trainedAlgorithmicMedia")
    srv = start_server(tmp, {"EDGE_SUPERRES_BUDGET_S": "120"}, masters=masters)
    yield srv
    stop_server(srv)


def read_tags(data: bytes, tmp: Path, name: str) -> dict[str, object]:
    path = tmp / name
    path.write_bytes(data)
    out = subprocess.run([EXIFTOOL, "-json", "-G1", "-a", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def value(tags: dict[str, object], suffix: str) -> list[object]:
    return [v for k, v in tags.items() if k.endswith(suffix)]


@pytest.mark.parametrize("fm", ["jpeg", "webp", "avif", "png"])
def test_plain_renditions_keep_source_type_and_rights_and_drop_location(served: Server, tmp_path: Path, fm: str):
    r = served.get(served.url("captured.jpg", w=160, fm=fm))
    assert r.status_code == 200 and r.headers["x-upscale"] == "none"
    tags = read_tags(r.content, tmp_path, f"plain.{fm}")
    assert value(tags, ":DigitalSourceType") == [TYPES + "digitalCapture"]
    assert COPYRIGHT in value(tags, ":Rights")
    assert not [k for k in tags if "GPS" in k], tags
    assert not value(tags, ":HistorySoftwareAgent")  # nothing was made up


@pytest.mark.parametrize("fm", ["jpeg", "webp", "avif", "png"])
def test_a_model_made_rendition_declares_it_and_keeps_the_rights(served: Server, tmp_path: Path, fm: str):
    r = served.get(served.url("captured.jpg", w=640, fm=fm), timeout=120)
    assert r.headers["x-upscale"].startswith("edgesr"), r.headers["x-upscale"]
    tags = read_tags(r.content, tmp_path, f"enhanced.{fm}")
    assert value(tags, ":DigitalSourceType") == [TYPES + "algorithmicallyEnhanced"]
    [agent] = value(tags, ":HistorySoftwareAgent")
    assert str(agent).startswith("edge-image-cdn/") and r.headers["x-upscale"] in str(agent)
    assert value(tags, ":HistoryAction") == ["edited"]
    assert COPYRIGHT in value(tags, ":Rights")
    if fm == "jpeg":
        assert COPYRIGHT in value(tags, ":Copyright")  # the EXIF one too
    assert not [k for k in tags if "GPS" in k]
    plain = served.get(served.url("captured.jpg", w=160, fm=fm))
    assert len(r.content) > len(plain.content)  # (the picture is bigger; the XMP a few hundred bytes)


def test_a_generated_master_is_not_weakened_to_enhanced(served: Server, tmp_path: Path):
    r = served.get(served.url("generated.jpg", w=640, fm="jpeg"), timeout=120)
    assert r.headers["x-upscale"].startswith("edgesr")
    tags = read_tags(r.content, tmp_path, "generated.jpg")
    assert value(tags, ":DigitalSourceType") == [TYPES + "trainedAlgorithmicMedia"]
    assert value(tags, ":HistoryAction") == ["edited"]  # the enhancement is in the history


def test_edge_provenance_prints_what_a_rendition_says_about_itself(served: Server, tmp_path: Path):
    url = served.url("captured.jpg", w=640, fm="webp")
    r = served.get(url, timeout=120)
    (tmp_path / "r.webp").write_bytes(r.content)
    text = edge("provenance", str(tmp_path / "r.webp"))
    assert text.returncode == 0, text.stderr
    assert f"source type: {TYPES}algorithmicallyEnhanced" in text.stdout
    assert "history:     edited by edge-image-cdn/" in text.stdout and r.headers["x-upscale"] in text.stdout
    assert f"dc:rights: {COPYRIGHT}" in text.stdout
    as_json = json.loads(edge("provenance", url, "--json").stdout)  # fetched as a browser would
    assert as_json["format"] == "webp" and as_json["source_type"] == TYPES + "algorithmicallyEnhanced"
    assert as_json["rights"]["exif:Copyright"] == COPYRIGHT and as_json["history"][0]["action"] == "edited"
    plain = json.loads(edge("provenance", served.url("captured.jpg", w=100, fm="jpeg"), "--json").stdout)
    assert plain["source_type"] == TYPES + "digitalCapture" and plain["history"] == []
    missing = edge("provenance", str(tmp_path / "nope.jpg"))
    assert missing.returncode == 2 and "No such file" in missing.stderr
