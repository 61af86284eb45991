"""The `edge` CLI and configuration, run as a user would run them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edge.config import ConfigError, load_config
from origin.masters.index import version_hash
from tests.support.cli import edge
from tests.support.corpus import CORPUS, TEST_KEYS
from tests.support.server import Server, start_server, stop_server


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["sign"], ["version"], ["hash"], ["provenance"], ["masters", "check"]]
)
def test_every_command_has_help(command):
    out = edge(*command, "--help")
    assert out.returncode == 0 and "usage: edge" in out.stdout


def test_sign_prints_a_working_signed_versioned_url(server: Server, http: httpx.Client):
    out = edge(
        "sign", "flower_640x427.jpg", "--masters", str(server.masters), "--w", "160", "--fm", "webp", "--q", "70"
    )
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    version = version_hash((CORPUS / "flower_640x427.jpg").read_bytes())[:16]
    assert url.startswith("/img/flower_640x427.jpg?fm=webp&kid=k1&q=70&v=" + version + "&w=160&s=")
    r = http.get(server.base + url)
    assert r.status_code == 200 and r.headers["cache-control"].endswith("immutable")


def test_sign_rejects_bad_options_naming_them():
    out = edge("sign", "flower_640x427.jpg", "--masters", str(CORPUS), "--w", "0")
    assert out.returncode == 1 and "w must be an integer 1..8192" in out.stderr


def test_sign_with_another_key_id(server: Server, http: httpx.Client):
    out = edge("sign", "flower_640x427.jpg", "--masters", str(server.masters), "--w", "40", "--kid", "k0")
    assert "kid=k0" in out.stdout
    assert http.get(server.base + out.stdout.strip()).status_code == 200
    bad = edge("sign", "flower_640x427.jpg", "--masters", str(server.masters), "--kid", "nope")
    assert bad.returncode == 2 and "no signing key with id 'nope'" in bad.stderr


def test_version_prints_the_blake3_prefix_and_the_full_hash():
    expected = version_hash((CORPUS / "rocket_640x427.jpg").read_bytes())
    assert edge("version", "rocket_640x427.jpg", "--masters", str(CORPUS)).stdout.strip() == expected[:16]
    assert edge("version", "rocket_640x427.jpg", "--masters", str(CORPUS), "--full").stdout.strip() == expected
    missing = edge("version", "nope.jpg", "--masters", str(CORPUS))
    assert missing.returncode == 1 and "no master" in missing.stderr


def test_bad_configuration_stops_start_up_with_a_clear_message(tmp_path: Path):
    cases = [
        ({"EDGE_PORT": "99999"}, "server.port must be 1..65535"),
        ({"EDGE_KEYS": "nocolon"}, "must look like id:secret"),
        ({"EDGE_KEYS": "a:short"}, "too short"),
        ({"EDGE_LIMITS_FAIL_ON": "sometimes"}, "limits.fail_on must be one of"),
        ({"EDGE_LIMITS_MAX_MASTER_PIXELS": "lots"}, "limits.max_master_pixels: expected int"),
        ({"EDGE_MASTERS": str(tmp_path / "missing")}, "is not a directory"),
    ]
    for env, message in cases:
        out = edge("serve", env=env)
        assert out.returncode == 2, env
        assert "configuration error" in out.stderr and message in out.stderr, (env, out.stderr)


def test_config_file_then_environment(tmp_path: Path):
    path = tmp_path / "edge.toml"
    path.write_text(
        f'[server]\nport = 9000\nmasters = "{CORPUS}"\n'
        '[limits]\nmax_frames = 12\n[formats]\npreference = ["webp", "jpeg"]\n'
    )
    config = load_config(path, env={"EDGE_PORT": "9001", "EDGE_ENCODE_AVIF_EFFORT": "0"})
    assert config.server.port == 9001 and config.limits.max_frames == 12
    assert config.formats.preference == ("webp", "jpeg") and config.encode.avif_effort == 0
    path.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match="server.prot: unknown setting"):
        load_config(path, env={})
    path.write_text("[sever]\n")
    with pytest.raises(ConfigError, match=r"unknown section \[sever\]"):
        load_config(path, env={})


def test_every_configuration_mistake_is_reported_at_once(tmp_path: Path):
    path = tmp_path / "edge.toml"
    path.write_text(
        '[server]\nport = "eighty"\nqueue_limit = -1\nretry_after_s = -5\n'
        '[limits]\nmax_jpeg_scans = 0\nmax_fames = 3\n[sever]\nport = 1\n[admin]\ntoken = "short"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={"EDGE_ENCODE_AVIF_EFFORT": "11", "EDGE_KEYS": "k1:short"})
    message = str(raised.value)
    expected = [
        "server.port: expected int, got 'eighty'",
        "server.queue_limit", "server.retry_after_s",  # the section's own checks, both
        "limits.max_fames: unknown setting", "limits.max_jpeg_scans must be 1 or more",
        "unknown section [sever]", "admin.token must be at least 16 characters",
        "encode.avif_effort must be 0..9", "signing.keys (EDGE_KEYS)",
    ]  # fmt: skip
    assert message.startswith(f"{message.split(' ')[0]} problems:"), message
    for part in expected:
        assert part in message, (part, message)


def test_unknown_routes_are_problem_json_too(server: Server, http: httpx.Client):
    r = http.get(server.base + "/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = http.post(server.url("flower_640x427.jpg"))
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["allow"] == "GET, HEAD"


def test_version_names_the_package_libvips_and_onnxruntime():
    out = edge("--version")
    assert out.returncode == 0
    assert re.fullmatch(r"edge-image-cdn/\S+ libvips/\d+\.\d+\.\d+ onnxruntime/\S+\n", out.stdout), out.stdout


def test_a_typo_in_an_edge_variable_is_reported_at_start(tmp_path: Path):
    server = start_server(tmp_path, {"EDGE_SEVRER_PORT": "9", "EDGE_LIMITS_MAX_FRAMES": "50"})
    try:
        log = server.log()
        assert "EDGE_SEVRER_PORT is not a setting" in log and "sections: server, signing" in log
        assert "EDGE_LIMITS_MAX_FRAMES" not in log  # a real setting says nothing
    finally:
        stop_server(server)


def test_sign_from_a_file_signs_every_line_and_reports_the_bad_ones(server: Server, http: httpx.Client):
    lines = "\n".join(
        [
            "flower_640x427.jpg w=160 fm=webp",
            '{"path": "rocket_640x427.jpg", "w": 120, "q": 70}',
            "",
            "# a comment",
            "no-such.jpg w=10",
            "flower_640x427.jpg w=abc",
            "flower_640x427.jpg zoom=2",
        ]
    )
    out = edge("sign", "--masters", str(server.masters), "--from", "-", stdin=lines + "\n")
    assert out.returncode == 1  # some lines could not be signed
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [row["line"] for row in rows] == [1, 2, 5, 6, 7]
    for row in rows[:2]:
        assert http.get(server.base + row["url"]).status_code == 200, row
    assert "no master" in rows[2]["error"] and "w must be an integer" in rows[3]["error"]
    assert "unknown option 'zoom'" in rows[4]["error"]
    single = edge("sign", "flower_640x427.jpg", "--masters", str(server.masters), "--w", "160", "--fm", "webp")
    assert single.stdout.strip() == rows[0]["url"]  # the same URL as one at a time


def test_sign_warns_about_the_development_key():
    out = edge("sign", "coffee.jpg", "--w", "10", env={"EDGE_KEYS": ""})
    assert out.returncode == 0 and "development key" in out.stderr


def test_purge_with_a_server_down_says_so_and_leaves_no_stray_directory(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli", "purge", "coffee.jpg", "--server", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the default cache dir is relative: var/cache must not appear here
        env={"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS, "EDGE_ADMIN_TOKEN": "admin-token-0123456789"},
        timeout=60,
    )
    assert out.returncode == 1
    assert "http://127.0.0.1:9: not reachable (ConnectError)" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "var").exists()


def test_log_level_quiets_the_server(tmp_path: Path):
    server = start_server(tmp_path, {"EDGE_SERVER_LOG_LEVEL": "warning"})
    try:
        assert server.get(server.url("flower_640x427.jpg", w=60)).status_code == 200
        log = server.log()
        assert '"event":"render"' not in log and '"request_id"' not in log  # INFO lines are gone
    finally:
        stop_server(server)
    bad = edge("serve", "--log-level", "loud")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_with_the_access_log_off_a_request_writes_no_line(tmp_path: Path):
    """Neither ours nor uvicorn's: a line per request is a large share of a cache hit's CPU."""
    server = start_server(tmp_path, {"EDGE_SERVER_ACCESS_LOG": "false", "EDGE_SERVER_WORKERS": "2"})
    try:
        url = server.url("flower_640x427.jpg", w=60)
        assert [server.get(url).status_code for _ in range(5)] == [200] * 5
        time.sleep(0.2)
        log = server.log()
        assert "uvicorn.access" not in log and '"request_id"' not in log and "GET /img/" not in log
        assert '"event":"render"' in log  # the render's audit line stays
    finally:
        stop_server(server)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_one_log_format_per_stream_start_up_lines_included(tmp_path: Path, fmt: str):
    server = start_server(tmp_path, {"EDGE_SERVER_LOG_FORMAT": fmt})
    try:
        assert server.get(server.url("flower_640x427.jpg", w=60)).status_code == 200
        assert server.get(server.base + "/nope").status_code == 404
    finally:
        stop_server(server)
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert any("Try: http://" in line for line in lines) and any("uvicorn" in line for line in lines)
    assert any('"event":"render"' in line for line in lines) and any('"request_id"' in line for line in lines)
    for line in lines:
        if fmt == "json":
            assert isinstance(json.loads(line), dict), line
        else:
            assert re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ", line), line


HEAVY = ("pyvips", "onnxruntime", "numpy", "aiobotocore", "botocore", "aiohttp", "httpx", "starlette", "c2pa", "yaml")


def test_help_loads_none_of_the_server_s3_model_or_image_libraries():
    """`edge --help` (the issue's 0.3 s, measured at 0.1 s here) stays fast because it imports no
    command module; checked by what it loads, not by a clock."""
    script = (
        "import sys\nfrom edge.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "serve" in out.stdout and out.stdout.strip().splitlines()[-1] == "loaded:", out.stdout[-300:]
    # A command's own --help loads only its module's needs: signing needs no model or S3 tier.
    sign = edge("sign", "--help")
    assert sign.returncode == 0 and "--from" in sign.stdout
