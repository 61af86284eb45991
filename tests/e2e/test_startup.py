"""A masters folder is user data: the server starts whatever it holds, and says on request what
cannot be served (`edge masters check`), never by dying at start."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.support.cli import edge
from tests.support.corpus import CORPUS
from tests.support.server import start_server, stop_server

PHOTO = "flower_640x427.jpg"


def hostile_folder(root: Path, with_photo: bool = True) -> Path:
    """Entries that sort before any photo: notes, a manifest, an empty file, a bomb, a lie, a FIFO,
    a broken symlink and a file name that is not UTF-8."""
    root.mkdir()
    (root / "00-notes.md").write_text("# shoot notes\n")
    (root / "MANIFEST.tsv").write_text("path\tcredit\n")
    (root / "README.txt").write_text("masters for the spring campaign\n")
    shutil.copy(CORPUS / "bomb_30000x30000_rgb8.png", root / "a-bomb.png")
    shutil.copy(CORPUS / "empty_0_bytes.jpg", root / "b-empty.jpg")
    shutil.copy(CORPUS / "random_4096_bytes.jpg", root / "c-random.jpg")
    os.mkfifo(root / "0-fifo.jpg")  # opening it for reading would block forever
    os.symlink(root / "gone.jpg", root / "0-dangling.jpg")
    # A name that is not UTF-8: no URL can name it; it must not break the listing.
    with open(os.path.join(os.fsencode(root), b"0-\xff\xfe.jpg"), "wb") as f:
        f.write((CORPUS / PHOTO).read_bytes())
    if with_photo:
        shutil.copy(CORPUS / PHOTO, root / f"z-{PHOTO}")
    return root


def test_the_server_starts_on_a_folder_whose_first_files_are_not_images(tmp_path: Path):
    masters = hostile_folder(tmp_path / "masters")
    server = start_server(tmp_path, masters=masters)
    try:
        log = server.log()
        # The sample URL names the first servable master, and it works.
        match = re.search(r"Try: (http://[^\s\"]+)", log)
        assert match and f"z-{PHOTO}" in match.group(1), log
        assert server.get(match.group(1)).status_code == 200
        assert server.get(server.url("README.txt")).status_code == 415
        assert server.get(server.url("a-bomb.png")).status_code in (413, 422)
        assert server.get(server.url("0-fifo.jpg")).status_code == 404
        assert server.get(server.url("0-dangling.jpg")).status_code == 404
    finally:
        stop_server(server)


def test_the_server_starts_when_nothing_in_the_folder_can_be_served(tmp_path: Path):
    masters = hostile_folder(tmp_path / "masters", with_photo=False)
    server = start_server(tmp_path, masters=masters)
    try:
        assert "edge masters check" in server.log() and "Try:" not in server.log()
        assert server.get(server.base + "/healthz").status_code == 200
    finally:
        stop_server(server)


def test_masters_check_reports_each_file_and_fails_when_some_cannot_be_served(tmp_path: Path):
    masters = hostile_folder(tmp_path / "masters")
    out = edge("masters", "check", "--masters", str(masters))
    assert out.returncode == 1, out.stderr
    by_path = {path: status for status, path, *_ in (line.split() for line in out.stdout.splitlines()[:-1])}
    assert by_path[f"z-{PHOTO}"] == "ok" and f"z-{PHOTO}  640x427 jpeg" in out.stdout
    assert by_path["README.txt"] == "415" and by_path["b-empty.jpg"] == "415"
    assert by_path["a-bomb.png"] in ("413", "422")
    assert by_path["0-fifo.jpg"] == by_path["0-dangling.jpg"] == "404"
    assert out.stdout.splitlines()[-1] == "9 file(s): 1 servable, 8 not"
    ok = edge("masters", "check", "--masters", str(masters), f"z-{PHOTO}")
    assert ok.returncode == 0 and ok.stdout.splitlines()[-1] == "1 file(s): 1 servable, 0 not"


def _loaded_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_worker_loads_onnxruntime_the_s3_client_and_the_c2pa_sdk_only_when_it_uses_them(tmp_path: Path):
    """Each is ~8-40 MB in every worker process; a server on local masters that upscales nothing
    carries none of them (their native libraries are what shows in the process's maps)."""
    server = start_server(tmp_path, {"EDGE_SUPERRES_BUDGET_S": "120"})
    try:
        assert server.get(server.url(PHOTO, w=320)).status_code == 200
        maps = _loaded_libraries(server.process.pid)
        for library in ("onnxruntime", "aiohttp", "c2pa"):
            assert library not in maps, library
        # Pixels past the master's: the model runs, and onnxruntime is loaded for it.
        upscaled = server.get(server.url("chelsea_cat_451x300.png", w=400, dpr=2, fm="png"), timeout=120)
        assert upscaled.status_code == 200 and upscaled.headers["x-upscale"] not in ("none", "lanczos")
        assert "onnxruntime" in _loaded_libraries(server.process.pid)
    finally:
        stop_server(server)
