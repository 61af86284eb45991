"""Configuration: one dataclass tree, read from a TOML file and then EDGE_* environment variables.

Every field can be set in the file (`[section] name = value`) or the environment
(`EDGE_SECTION_NAME`, e.g. `EDGE_LIMITS_MAX_MASTER_PIXELS=20000000`); a few common ones have short
names too (`EDGE_KEYS`, `EDGE_MASTERS`, `EDGE_HOST`, `EDGE_PORT`). Everything is validated at
start-up; a bad value stops the server with a message that names it.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from edge.signing import SigningKey, parse_keys
from origin.encode import EncodeSettings
from origin.http_masters import AllowEntry, HttpSettings
from origin.limits import FAIL_ON, Limits
from origin.s3 import S3Settings, split_s3_url

DEMO_MASTERS = Path(__file__).parent / "demo" / "masters"
BUNDLED_RULES = Path(__file__).parent.parent / "rules" / "examples"
# A development key, printed in a warning whenever it is used. Never for production.
DEV_KEYS = "dev:edge-image-cdn-development-key-NOT-SECRET"
FORMATS = ("avif", "webp", "jpeg", "png", "gif")

SHORT_ENV = {
    "EDGE_KEYS": ("signing", "keys"),
    "EDGE_MASTERS": ("server", "masters"),
    "EDGE_HOST": ("server", "host"),
    "EDGE_PORT": ("server", "port"),
    "EDGE_CACHE_DIR": ("cache", "disk_dir"),
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    masters: str = ""  # a directory or s3://bucket/prefix; empty means the bundled demo masters
    render_workers: int = 0  # 0: one per CPU core
    queue_limit: int = 32  # renders that may wait for a worker before 503
    render_timeout_s: float = 20.0
    retry_after_s: int = 2
    access_log: bool = True  # one JSON line per request on stderr


@dataclass(frozen=True)
class SigningConfig:
    keys: str = ""  # "id1:secret1,id2:secret2"; the first signs. Empty: the dev key (with a warning)
    required: bool = True  # false accepts unsigned URLs: development only, logged loudly


@dataclass(frozen=True)
class CacheConfig:
    memory_mb: int = 256
    disk_dir: str = "var/cache"  # relative paths are relative to the working directory
    disk_mb: int = 4096
    s3_url: str = ""  # s3://bucket/prefix: a rendition tier shared by every replica (behind disk)


@dataclass(frozen=True)
class RulesConfig:
    dir: str = ""  # directory of *.yaml breakpoint rules; empty: the bundled examples
    # Closed world: only renditions some rule declares are rendered, so a leaked key cannot be
    # used to ask for arbitrary sizes.
    closed_world: bool = False
    preview: bool = False  # the /preview page for frontend developers


@dataclass(frozen=True)
class SuperResConfig:
    enabled: bool = True  # use a model when one is installed (the project ships one)
    min_dpr: float = 2.0  # only requests at this DPR or above get invented detail
    min_factor: float = 1.15  # only when the output needs this many times the master's pixels per side
    # The longest a request waits for a model. A slower run (typical on CPU-only hosts) answers at
    # once with Lanczos, privately cached, and runs the model in the background.
    budget_s: float = 1.0
    concurrency: int = 1  # model runs at once: one device
    queue_limit: int = 16
    timeout_s: float = 120.0
    threads: int = 0  # onnxruntime threads per run; 0: one per core
    use_cuda: bool = True  # when onnxruntime-gpu and a GPU are present
    # Extra models (built by `edge models add`), besides the bundled ones: a registry.json there
    # is loaded when it exists. Relative to the working directory, like cache.disk_dir.
    models_dir: str = "var/models"
    intermediate_mb: int = 256  # upscaled regions kept for other widths and formats


@dataclass(frozen=True)
class SitemapsConfig:
    dir: str = "var/sitemaps"  # built sitemaps, served at /sitemaps/


@dataclass(frozen=True)
class AdminConfig:
    token: str = ""  # bearer token for /admin/*; empty disables the admin endpoints


@dataclass(frozen=True)
class FormatConfig:
    preference: tuple[str, ...] = ("avif", "webp", "jpeg")
    avif_quality: int = 50
    webp_quality: int = 80
    jpeg_quality: int = 80

    def qualities(self) -> dict[str, int]:
        return {"avif": self.avif_quality, "webp": self.webp_quality, "jpeg": self.jpeg_quality}


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    limits: Limits = field(default_factory=Limits)
    formats: FormatConfig = field(default_factory=FormatConfig)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    admin: AdminConfig = field(default_factory=AdminConfig)
    http: HttpSettings = field(default_factory=HttpSettings)  # masters given as absolute URLs
    rules: RulesConfig = field(default_factory=RulesConfig)
    sitemaps: SitemapsConfig = field(default_factory=SitemapsConfig)
    superres: SuperResConfig = field(default_factory=SuperResConfig)

    @property
    def rules_dir(self) -> Path:
        return Path(self.rules.dir) if self.rules.dir else BUNDLED_RULES

    @property
    def masters_in_s3(self) -> bool:
        return self.server.masters.startswith("s3://")

    @property
    def masters_dir(self) -> Path:
        return Path(self.server.masters) if self.server.masters else DEMO_MASTERS

    @property
    def uses_dev_key(self) -> bool:
        return not self.signing.keys

    def signing_keys(self) -> list[SigningKey]:
        return parse_keys(self.signing.keys or DEV_KEYS)


BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _coerce(value: Any, current: Any) -> Any:
    """`value` as the type of the field's default `current`; ValueError when it is not one."""
    if isinstance(current, bool):
        return value if isinstance(value, bool) else BOOLEANS[str(value).strip().lower()]
    if isinstance(current, int):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(str(i).strip() for i in items if str(i).strip())
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError(value)


def _convert(value: Any, current: Any, where: str) -> Any:
    try:
        return _coerce(value, current)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: expected {type(current).__name__}, got {value!r}") from None


def _apply(section: Any, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in fields(section)}
    changes = {}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(f"{where}.{name}: unknown setting (known: {', '.join(sorted(known))})")
        changes[name] = _convert(value, getattr(section, name), f"{where}.{name}")
    return replace(section, **changes)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """File, then environment, then explicit overrides (`section.name` keys, e.g. from CLI flags)."""
    env = os.environ if env is None else env
    config = Config()
    path = path or env.get("EDGE_CONFIG")
    if path:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        for name, values in doc.items():
            if not hasattr(config, name) or not isinstance(values, dict):
                sections = ", ".join(f.name for f in fields(config))
                raise ConfigError(f"{path}: unknown section [{name}] (known: {sections})")
            config = replace(config, **{name: _apply(getattr(config, name), values, f"{path}: {name}")})

    by_section: dict[str, dict[str, Any]] = {}
    for var, value in env.items():
        if var in SHORT_ENV:
            section, name = SHORT_ENV[var]
        elif var.startswith("EDGE_") and var != "EDGE_CONFIG":
            rest = var[5:].lower()
            section, _, name = rest.partition("_")
            if not hasattr(config, section) or not is_dataclass(getattr(config, section)):
                continue
        else:
            continue
        by_section.setdefault(section, {})[name] = value
    for key, value in overrides.items():
        if value is not None:
            section, _, name = key.partition(".")
            by_section.setdefault(section, {})[name] = value
    for section, values in by_section.items():
        config = replace(config, **{section: _apply(getattr(config, section), values, section)})
    validate(config)
    return config


def validate(config: Config) -> None:
    s, lim, fm = config.server, config.limits, config.formats
    checks = [
        (1 <= s.port <= 65535, f"server.port must be 1..65535, got {s.port}"),
        (s.render_workers >= 0, "server.render_workers must be 0 (auto) or more"),
        (s.queue_limit >= 0, "server.queue_limit must be 0 or more"),
        (s.render_timeout_s > 0, "server.render_timeout_s must be more than 0"),
        (
            config.masters_in_s3 or config.masters_dir.is_dir(),
            f"server.masters: {config.masters_dir} is not a directory",
        ),
        (lim.fail_on in FAIL_ON, f"limits.fail_on must be one of {', '.join(FAIL_ON)}, got {lim.fail_on!r}"),
        (lim.max_master_pixels > 0 and lim.max_output_pixels > 0, "limits: pixel limits must be positive"),
        (64 <= lim.max_output_side <= 16384, "limits.max_output_side must be 64..16384"),
        (
            fm.preference and all(f in ("avif", "webp", "jpeg") for f in fm.preference),
            f"formats.preference must list avif, webp and/or jpeg, got {list(fm.preference)}",
        ),
        (all(1 <= q <= 100 for q in fm.qualities().values()), "formats.*_quality must be 1..100"),
        (0 <= config.encode.avif_effort <= 9, "encode.avif_effort must be 0..9"),
        (config.superres.min_dpr >= 1 and config.superres.min_factor >= 1, "superres: min_dpr, min_factor >= 1"),
        (
            config.superres.concurrency >= 1 and config.superres.budget_s >= 0,
            "superres: concurrency >= 1, budget_s >= 0",
        ),
        (0 <= config.encode.webp_effort <= 6, "encode.webp_effort must be 0..6"),
        (config.cache.memory_mb >= 0 and config.cache.disk_mb >= 0, "cache sizes must be 0 or more"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    try:
        config.signing_keys()
    except ValueError as e:
        raise ConfigError(f"signing.keys (EDGE_KEYS): {e}") from None
    for name, url in (("server.masters", config.server.masters), ("cache.s3_url", config.cache.s3_url)):
        if url.startswith("s3://") or (name == "cache.s3_url" and url):
            try:
                split_s3_url(url)
            except ValueError as e:
                raise ConfigError(f"{name}: {e}") from None
    for entry in config.http.allow:
        try:
            AllowEntry.parse(entry)
        except ValueError as e:
            raise ConfigError(f"http.allow: {e}") from None
    for network in config.http.allow_networks:
        try:
            ipaddress.ip_network(network)
        except ValueError:
            raise ConfigError(f"http.allow_networks: {network!r} is not a network like 10.0.0.0/8") from None
    if config.admin.token and len(config.admin.token) < 16:
        raise ConfigError("admin.token must be at least 16 characters")
