"""Configuration: one dataclass tree, read from a TOML file and then EDGE_* environment variables.

Every field can be set in the file (`[section] name = value`) or the environment
(`EDGE_SECTION_NAME`, e.g. `EDGE_LIMITS_MAX_MASTER_PIXELS=20000000`); a few common ones have short
names too (`EDGE_KEYS`, `EDGE_MASTERS`, `EDGE_HOST`, `EDGE_PORT`). Everything is validated at
start-up; a bad value stops the server with a message that names it.

Each section is the settings class of the package it configures, and validates itself in
`__post_init__` with a ValueError that starts with the field's name; this module only reads the
sources, composes the sections, and checks what involves more than one of them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edge.cdn_settings import CdnSettings
from edge.client_hints import ClientHintsSettings
from edge.logs import FORMATS as LOG_FORMATS
from edge.logs import LEVELS as LOG_LEVELS
from edge.signing import SigningKey, parse_keys
from origin.core.formats import EncodeSettings, FormatSettings
from origin.core.limits import Limits
from origin.core.provenance import ProvenanceSettings
from origin.masters.http_settings import HttpSettings
from origin.masters.s3_settings import S3Settings, split_s3_url
from origin.superres.policy import SuperResSettings
from rules.settings import RulesSettings
from sitemaps.settings import SitemapsSettings

DEMO_MASTERS = Path(__file__).parent / "demo" / "masters"
# A development key, printed in a warning whenever it is used. Never for production.
DEV_KEYS = "dev:edge-image-cdn-development-key-NOT-SECRET"

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
    workers: int = 0  # worker processes of `edge serve`; 0: one per CPU this process may use
    render_workers: int = 0  # render threads per worker process; 0: the CPUs divided among the workers
    queue_limit: int = 32  # renders that may wait for a worker before 503
    # Memory the renders admitted at once may be expected to need (master bytes, decode, output),
    # per worker process; past it a miss is 503 before its master is read. One is always let in.
    render_memory_mb: int = 384
    # glibc malloc arenas per process (0: glibc's default, 8 per core). libvips, onnxruntime and the
    # render threads each get arenas that fragment: 2 cut the peak RSS of the hostile-load run
    # from 744 to 522-590 MB (benchmarks/hostile.py; origin.imaging.runtime). MALLOC_ARENA_MAX wins.
    malloc_arenas: int = 2
    render_timeout_s: float = 20.0
    # Renders with an output of at least this many megapixels, and every SVG master, run in a
    # child process that is killed at render_timeout_s (an encode or SVG rasterisation cannot be
    # interrupted in a thread: origin.isolated); 0: every render in a thread.
    isolate_megapixels: float = 8.0
    # A rendition that ran past render_timeout_s is answered 504 at once for this long (0: never).
    timeout_memory_s: float = 300.0
    retry_after_s: int = 2
    # A client must send each request (head and body) within this of its first byte, else the
    # connection is closed (slowloris; edge.http.protocol).
    request_timeout_s: float = 10.0
    access_log: bool = True  # one JSON line per request on stderr
    log_level: str = "info"  # debug | info | warning | error (EDGE_SERVER_LOG_LEVEL, --log-level)
    # One format per stream (edge.logs): json, text, or auto (json unless stderr is a terminal).
    log_format: str = "auto"
    # How long a master's stat is trusted: a replaced master shows within this; 0 stats every request.
    master_stat_ttl_s: float = 1.0
    # A provisional rendition (README "Upgrades") is upgraded when the render pool is idle; on a
    # server that never is, one asked for again once it has waited this long (0: only when idle),
    # with upgrades made under load taking at most upgrade_under_load_share of a render thread.
    upgrade_under_load_after_s: float = 30.0
    upgrade_under_load_share: float = 0.1

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65535, f"port must be 1..65535, got {self.port}"),
            (self.master_stat_ttl_s >= 0, "master_stat_ttl_s must be 0 or more"),
            (self.workers >= 0, "workers must be 0 (one per CPU) or more"),
            (self.render_workers >= 0, "render_workers must be 0 (auto) or more"),
            (self.queue_limit >= 0, "queue_limit must be 0 or more"),
            (self.render_memory_mb >= 0, "render_memory_mb must be 0 (no limit) or more"),
            (self.malloc_arenas >= 0, "malloc_arenas must be 0 (glibc's default) or more"),
            (self.render_timeout_s > 0, "render_timeout_s must be more than 0"),
            (self.isolate_megapixels >= 0, "isolate_megapixels must be 0 (never) or more"),
            (self.request_timeout_s > 0, "request_timeout_s must be more than 0"),
            (self.log_level in LOG_LEVELS, f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"),
            (
                self.log_format in LOG_FORMATS,
                f"log_format must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}",
            ),
            (self.timeout_memory_s >= 0, "timeout_memory_s must be 0 (off) or more"),
            (self.retry_after_s >= 0, "retry_after_s must be 0 or more"),
            (self.upgrade_under_load_after_s >= 0, "upgrade_under_load_after_s must be 0 (only when idle) or more"),
            (0 < self.upgrade_under_load_share <= 1, "upgrade_under_load_share must be more than 0 and at most 1"),
        ]
        _check(checks)
        if self.masters.startswith("s3://"):
            try:
                split_s3_url(self.masters)
            except ValueError as e:
                raise ValueError(f"masters: {e}") from None


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
    # Masters decoded once for all the renditions their rules declare (a srcset burst); 0: off.
    decoded_mb: int = 64  # a burst works on a master or two at a time: ~6 decodes of 2048 px
    # Response headers naming the master's id on every rendition, for CDN purges by tag (Fastly
    # reads Surrogate-Key, Cloudflare Cache-Tag); `edge purge` prints the id. Empty: none sent.
    surrogate_key_headers: tuple[str, ...] = ("Surrogate-Key", "Cache-Tag")

    def __post_init__(self) -> None:
        sizes = min(self.memory_mb, self.disk_mb, self.decoded_mb)
        _check([(sizes >= 0, "memory_mb, disk_mb and decoded_mb must be 0 or more")])
        if self.s3_url:
            try:
                split_s3_url(self.s3_url)
            except ValueError as e:
                raise ValueError(f"s3_url: {e}") from None


@dataclass(frozen=True)
class AdminConfig:
    token: str = ""  # bearer token for /admin/*; empty disables the admin endpoints

    def __post_init__(self) -> None:
        _check([(not self.token or len(self.token) >= 16, "token must be at least 16 characters")])


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    limits: Limits = field(default_factory=Limits)
    formats: FormatSettings = field(default_factory=FormatSettings)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    admin: AdminConfig = field(default_factory=AdminConfig)
    http: HttpSettings = field(default_factory=HttpSettings)  # masters given as absolute URLs
    rules: RulesSettings = field(default_factory=RulesSettings)
    sitemaps: SitemapsSettings = field(default_factory=SitemapsSettings)
    superres: SuperResSettings = field(default_factory=SuperResSettings)
    client_hints: ClientHintsSettings = field(default_factory=ClientHintsSettings)
    cdn: CdnSettings = field(default_factory=CdnSettings)
    provenance: ProvenanceSettings = field(default_factory=ProvenanceSettings)

    @property
    def rules_dir(self) -> Path:
        return self.rules.path

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


def _check(checks: list[tuple[bool, str]]) -> None:
    """A ValueError with every failed check's message (one per argument), or nothing."""
    failed = [message for ok, message in checks if not ok]
    if failed:
        raise ValueError(*failed)


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


def _apply(section: Any, values: Mapping[str, Any], where: str, problems: list[str]) -> Any:
    """The section with `values` applied; what is wrong goes to `problems` (and leaves the
    section as it was), so one run reports every mistake, not the first."""
    known = {f.name for f in fields(section)}
    changes = {}
    for name, value in values.items():
        if name not in known:
            problems.append(f"{where}.{name}: unknown setting (known: {', '.join(sorted(known))})")
            continue
        current = getattr(section, name)
        try:
            changes[name] = _coerce(value, current)
        except (KeyError, TypeError, ValueError):
            problems.append(f"{where}.{name}: expected {type(current).__name__}, got {value!r}")
    try:
        return replace(section, **changes)
    except ValueError as e:  # the section's own validation: each message starts with the field
        problems.extend(f"{where}.{message}" for message in e.args)
        return section


def unknown_environment(env: Mapping[str, str] | None = None) -> list[str]:
    """EDGE_* variables that name no section (a typo like EDGE_SEVRER_PORT would otherwise be
    ignored in silence); an unknown setting in a known section is an error of load_config."""
    env = os.environ if env is None else env
    sections = [f.name for f in fields(Config)]
    unknown = []
    for var in sorted(env):
        if not var.startswith("EDGE_") or var in SHORT_ENV or var == "EDGE_CONFIG":
            continue
        if not any(var[5:].lower().startswith(section + "_") for section in sections):
            unknown.append(f"{var} is not a setting (EDGE_<SECTION>_<NAME>; sections: {', '.join(sections)})")
    return unknown


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """File, then environment, then explicit overrides (`section.name` keys, e.g. from CLI flags)."""
    env = os.environ if env is None else env
    config = Config()
    problems: list[str] = []
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
                problems.append(f"{path}: unknown section [{name}] (known: {sections})")
                continue
            config = replace(config, **{name: _apply(getattr(config, name), values, f"{path}: {name}", problems)})

    by_section: dict[str, dict[str, Any]] = {}
    for var, value in env.items():
        if var in SHORT_ENV:
            section, name = SHORT_ENV[var]
        elif var.startswith("EDGE_") and var != "EDGE_CONFIG":
            rest = var[5:].lower()
            # Section names may hold "_" themselves (client_hints): the longest that fits wins.
            fits = [f.name for f in fields(config) if rest.startswith(f.name + "_")]
            if not fits:
                continue
            section = max(fits, key=len)
            name = rest[len(section) + 1 :]
        else:
            continue
        by_section.setdefault(section, {})[name] = value
    for key, value in overrides.items():
        if value is not None:
            section, _, name = key.partition(".")
            by_section.setdefault(section, {})[name] = value
    for section, values in by_section.items():
        config = replace(config, **{section: _apply(getattr(config, section), values, section, problems)})
    problems += validate(config)
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} problems:\n  " + "\n  ".join(problems))
    return config


def validate(config: Config) -> list[str]:
    """What no section can check alone (each validated itself when it was made)."""
    problems = []
    if not config.masters_in_s3 and not config.masters_dir.is_dir():
        problems.append(f"server.masters: {config.masters_dir} is not a directory")
    try:
        config.signing_keys()
    except ValueError as e:
        problems.append(f"signing.keys (EDGE_KEYS): {e}")
    return problems
