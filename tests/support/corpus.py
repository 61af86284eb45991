"""The test corpus (real photos and hostile files, copied from ../shared/corpus), keys and headers."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
TEST_KEYS = "k1:test-secret-number-one-0123456789,k0:test-secret-number-zero-0123456789"
AVIF_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
WEBP_ACCEPT = "image/webp,*/*"
# Test servers trust a master's stat this long (production: 1 s): a test that replaces a master
# waits past it before it expects the new version.
MASTER_STAT_TTL_S = 0.2
TEST_ENV = {
    "EDGE_KEYS": TEST_KEYS,
    "EDGE_SUPERRES_MODELS_DIR": "",
    "EDGE_SERVER_MASTER_STAT_TTL_S": str(MASTER_STAT_TTL_S),
    "EDGE_SERVER_WORKERS": "1",  # one process: tests/e2e/test_workers.py starts several
    # The markup endpoints answer without a token (tests/unit/test_markup.py checks the default).
    "EDGE_RULES_MARKUP_ACCESS": "public",
    # No background re-encodes: a rendition's bytes and ETag must not change between two requests
    # of a test because the server went idle in between. tests/unit/test_upgrades.py turns them on.
    "EDGE_ENCODE_UPGRADES": "false",
}

BROKEN = [
    "truncated_60pct.png",
    "truncated_baseline_60pct.jpg",
    "truncated_progressive_50pct.jpg",
    "corrupt_entropy_2560x1600.jpg",
    "header_only_6028x3391.jpg",
    "empty_0_bytes.jpg",
    "random_4096_bytes.jpg",
]
BOMBS = [
    "bomb_30000x30000_rgb8.png",
    "bomb_30000x30000_1bit.png",
    "found_gif_bomb_pillow.gif",
    "svg_huge_100000x100000.svg",
]
