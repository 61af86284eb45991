"""C2PA Content Credentials (issue: provenance), checked with the C2PA SDK's own reader.

A throwaway chain (tests.support.c2pa) signs the masters as a camera would and the renditions as
the origin; the reader trusts only its root. A rendition of a master with a manifest validates,
names the master as parent ingredient and lists the steps that made it; one changed byte fails.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import c2pa
import pytest

from edge.config import ConfigError, load_config
from edge.services import build_services
from origin.imaging.credentials import Steps, actions, read_credentials
from tests.support.app import InProcess, in_process
from tests.support.c2pa import Chain, make_chain, with_manifest
from tests.support.cli import run_cli
from tests.support.corpus import AVIF_ACCEPT, CORPUS


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return make_chain(tmp_path_factory.mktemp("chain"))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, chain: Chain):
    tmp = tmp_path_factory.mktemp("c2pa")
    masters = tmp / "masters"
    masters.mkdir()
    flower = (CORPUS / "flower_640x427.jpg").read_bytes()
    (masters / "signed.jpg").write_bytes(with_manifest(flower, "image/jpeg", "signed.jpg", chain))
    cat = (CORPUS / "chelsea_cat_451x300.png").read_bytes()
    (masters / "cat.png").write_bytes(with_manifest(cat, "image/png", "cat.png", chain))
    shutil.copy(CORPUS / "flower_640x427.jpg", masters / "plain.jpg")
    cert, key = chain.origin
    env = {
        "EDGE_PROVENANCE_C2PA": "true",
        "EDGE_PROVENANCE_CERT": str(cert),
        "EDGE_PROVENANCE_KEY": str(key),
        "EDGE_SUPERRES_BUDGET_S": "120",  # the model answers in the request, however slow this CPU
    }
    with in_process(tmp, env, masters=masters) as made:
        yield made


def _get(app: InProcess, path: str, **options: object) -> bytes:
    with app.client() as client:
        r = client.get(app.url(path, **options), headers={"Accept": AVIF_ACCEPT})
    assert r.status_code == 200, r.text
    return r.content


def _credentials(body: bytes, mime: str, chain: Chain) -> dict:
    found = read_credentials(body, mime, chain.root.read_text())
    assert found is not None, "no manifest"
    return found


def test_a_rendition_validates_and_names_the_master_as_its_parent(app: InProcess, chain: Chain):
    body = _get(app, "signed.jpg", w=320, fm="webp")
    found = _credentials(body, "image/webp", chain)
    assert found["state"] == "Trusted" and found["failures"] == []
    assert found["ingredients"] == [{"title": "signed.jpg", "relationship": "parentOf", "manifest": True}]
    assert found["actions"] == ["c2pa.opened", "c2pa.resized", "c2pa.transcoded"]
    assert found["generator"][0].startswith("edge-image-cdn/")
    with c2pa.Reader("image/webp", io.BytesIO(body)) as reader:
        manifest = reader.get_active_manifest()
    done = {
        a["action"]: a
        for x in manifest["assertions"]
        if x["label"].startswith("c2pa.actions")
        for a in x["data"]["actions"]
    }
    assert done["c2pa.transcoded"]["parameters"]["format"] == "image/webp"
    assert done["c2pa.resized"]["parameters"] == {"width": 320, "height": 214}
    # The parent's own manifest travels with it: the camera's capture is still on record.
    parent = json.loads(reader_json(body, "image/webp"))
    assert any("test-camera" in json.dumps(m.get("claim_generator_info")) for m in parent["manifests"].values())


def reader_json(body: bytes, mime: str) -> str:
    with c2pa.Reader(mime, io.BytesIO(body)) as reader:
        return reader.json()


def test_a_changed_byte_fails_validation(app: InProcess, chain: Chain):
    body = bytearray(_get(app, "signed.jpg", w=300, fm="jpeg"))
    assert _credentials(bytes(body), "image/jpeg", chain)["state"] == "Trusted"
    body[len(body) * 3 // 4] ^= 0x01  # in the image data, past the manifest
    tampered = _credentials(bytes(body), "image/jpeg", chain)
    assert tampered["state"] == "Invalid" and tampered["failures"]


def test_crops_and_other_formats_are_recorded(app: InProcess, chain: Chain):
    body = _get(app, "cat.png", crop="50,20,300,200", w=150, fm="avif")
    found = _credentials(body, "image/avif", chain)
    assert found["state"] == "Trusted"
    assert found["actions"] == ["c2pa.opened", "c2pa.cropped", "c2pa.resized", "c2pa.transcoded"]


def test_super_resolution_is_an_edit_that_names_the_model(app: InProcess, chain: Chain):
    with app.client() as client:
        r = client.get(app.url("cat.png", w=902, fm="jpeg"))
    assert r.status_code == 200 and r.headers["x-upscale"] not in ("none", "lanczos"), r.headers
    found = _credentials(r.content, "image/jpeg", chain)
    assert found["state"] == "Trusted"
    assert "c2pa.edited (algorithmicallyEnhanced)" in found["actions"]
    with c2pa.Reader("image/jpeg", io.BytesIO(r.content)) as reader:
        manifest = reader.get_active_manifest()
    edit = next(
        a
        for x in manifest["assertions"]
        if x["label"].startswith("c2pa.actions")
        for a in x["data"]["actions"]
        if a["action"] == "c2pa.edited"
    )
    assert f"{edit['softwareAgent']['name']}@{edit['softwareAgent']['version']}" == r.headers["x-upscale"]


def test_masters_without_a_manifest_get_none_unless_asked(app: InProcess, chain: Chain, tmp_path: Path):
    assert read_credentials(_get(app, "plain.jpg", w=200, fm="jpeg"), "image/jpeg", chain.root.read_text()) is None
    cert, key = chain.origin
    env = {"EDGE_PROVENANCE_C2PA": "true", "EDGE_PROVENANCE_CERT": str(cert), "EDGE_PROVENANCE_KEY": str(key)}
    env["EDGE_PROVENANCE_UNMANIFESTED"] = "true"
    with in_process(tmp_path, env, masters=app.masters) as own:
        found = _credentials(_get(own, "plain.jpg", w=200, fm="jpeg"), "image/jpeg", chain)
    assert found["state"] == "Trusted"
    assert found["ingredients"] == [{"title": "plain.jpg", "relationship": "parentOf", "manifest": False}]


def test_a_bad_certificate_or_key_stops_start_up(chain: Chain, tmp_path: Path):
    cert, _ = chain.origin
    garbage = tmp_path / "bad.key"
    garbage.write_text("not a key")
    for key in (garbage, tmp_path / "missing.key"):
        config = load_config(
            env={"EDGE_PROVENANCE_C2PA": "true", "EDGE_PROVENANCE_CERT": str(cert), "EDGE_PROVENANCE_KEY": str(key)}
        )
        with pytest.raises(ConfigError, match=r"provenance\.(cert/)?key"):
            build_services(config)
    with pytest.raises(ConfigError, match="cert and key"):
        load_config(env={"EDGE_PROVENANCE_C2PA": "true"})


def test_edge_provenance_prints_the_credentials(app: InProcess, chain: Chain, tmp_path: Path, capsys):
    path = tmp_path / "r.webp"
    path.write_bytes(_get(app, "signed.jpg", w=320, fm="webp"))
    assert run_cli("provenance", str(path), "--trust", str(chain.root)) == 0
    out = capsys.readouterr().out
    assert "c2pa:        Trusted" in out and "c2pa.opened, c2pa.resized, c2pa.transcoded" in out
    assert "ingredient:  signed.jpg (parentOf, with its manifest)" in out


def test_the_actions_follow_the_steps():
    steps = Steps("a.jpg", "jpeg", "avif", 100, 50, cropped=True, model="edgesr-x2@2.0", scale=2)
    assert [a["action"] for a in actions(steps)] == [
        "c2pa.opened", "c2pa.cropped", "c2pa.edited", "c2pa.resized", "c2pa.transcoded",
    ]  # fmt: skip
