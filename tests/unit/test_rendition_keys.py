"""Rendition keys (and so ETags) name everything that makes the bytes: a new super-resolution model,
or a new version of one, is a new key for the renditions a model makes, and only for those."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from origin.core.formats import EncodeSettings, FormatSettings
from origin.core.limits import Limits
from origin.core.master import MasterHeader, MasterInfo, MasterRecord
from origin.core.request import RenditionOptions
from origin.imaging.intermediates import IntermediateCache
from origin.masters.local import LocalMasterStore
from origin.pool import RenderPool
from origin.render import Renderer, SuperRes
from origin.superres.policy import SuperResPolicy
from origin.superres.registry import BUILTIN_DIR, available_models
from origin.superres.runtime import Upscaler
from tests.support.app import in_process
from tests.support.corpus import CORPUS

FLOWER = MasterRecord(MasterInfo("flower.jpg", 1, "1"), "ab" * 32, MasterHeader("jpeg", 640, 427, 3, False, 1))
HIGH_DPR = RenditionOptions(w=640, dpr=2)  # 1280 device px from a 640 px master: a model makes them
PLAIN = RenditionOptions(w=320)  # a reduction: no model involved


def renderer(upscaler: Upscaler) -> Renderer:
    pool = RenderPool(1, 0, 10)
    superres = SuperRes(upscaler, pool, IntermediateCache(1 << 20))
    store = LocalMasterStore(CORPUS)
    return Renderer(store, Limits(), FormatSettings(), EncodeSettings(), pool, SuperResPolicy(), superres)


def test_a_new_model_version_is_a_new_key_only_where_a_model_makes_the_pixels():
    models = available_models()
    bumped = [replace(m, version=m.version + ".1") for m in models]
    before, after = renderer(Upscaler(models, use_cuda=False)), renderer(Upscaler(bumped, use_cuda=False))
    sr_before, sr_after = before.job(FLOWER, HIGH_DPR, "avif"), after.job(FLOWER, HIGH_DPR, "avif")
    assert sr_before.model == "edgesr-x2@2.0" and sr_after.model == "edgesr-x2@2.0.1"
    assert sr_before.key != sr_after.key
    assert before.job(FLOWER, PLAIN, "avif").key == after.job(FLOWER, PLAIN, "avif").key


def test_lanczos_and_model_renditions_have_different_keys():
    with_model = renderer(Upscaler(available_models(), use_cuda=False))
    lanczos = Renderer(LocalMasterStore(CORPUS), Limits(), FormatSettings(), EncodeSettings(), RenderPool(1, 0, 10))
    assert with_model.job(FLOWER, HIGH_DPR, "webp").key != lanczos.job(FLOWER, HIGH_DPR, "webp").key
    assert with_model.job(FLOWER, PLAIN, "webp").key == lanczos.job(FLOWER, PLAIN, "webp").key


def etags(app, *paths: str) -> list[str]:
    """The ETag of each rendition, read from a 304 (If-None-Match: *), so nothing is rendered."""
    with app.client() as client:
        answers = [client.get(app.url(path, **opts), headers={"If-None-Match": "*"}) for path, opts in paths]
    assert all(r.status_code == 304 for r in answers)
    return [r.headers["etag"] for r in answers]


def test_edge_models_add_style_upgrade_moves_the_etag(tmp_path: Path):
    """A model registered in superres.models_dir under the bundled name with a new version (what
    `edge models add` or a model upgrade does) changes the ETag of high-DPR enlargements."""
    registry = json.loads((BUILTIN_DIR / "registry.json").read_text())
    for entry in registry["models"]:
        entry["version"] += "-retrained"
        entry["file"] = str(BUILTIN_DIR / entry["file"])
        entry["file_fp16"] = str(BUILTIN_DIR / entry["file_fp16"])
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "registry.json").write_text(json.dumps(registry))
    requests = [("flower_640x427.jpg", {"w": 640, "dpr": 2}), ("flower_640x427.jpg", {"w": 320})]
    with in_process(tmp_path / "a") as bundled:
        before = etags(bundled, *requests)
    with in_process(tmp_path / "b", {"EDGE_SUPERRES_MODELS_DIR": str(tmp_path / "models")}) as upgraded:
        after = etags(upgraded, *requests)
    assert before[0] != after[0]  # the enlargement a model makes
    assert before[1] == after[1]  # a reduction is the same bytes whatever model is installed
