"""When and how a rendition is upscaled by a model: the one place that decides. Pure.

The planner asks `scale` (x2 or x4, or 0 for Lanczos), srcset asks `width_factor` (how far past the
master its widest candidate may go), the renderer asks `may_wait` (run the model in the request, or
serve Lanczos now and the model's rendition later) and names the model in the rendition key with
`key_part`. All four read the same settings, so the markup and the renderer cannot disagree.

A model runs wherever pixels are missing: whenever a rendition needs more than `min_factor` times
its source region's pixels per side, whatever its URL spells (`w=1280`, or `w=640&dpr=2`). Only
dense screens or very wide viewports pick such a srcset candidate, so it is a high-DPR request by
construction; `dpr` in a URL only multiplies `w` and `h`. Every candidate srcset offers past the
master (up to `width_factor` times its width) is therefore made by the model on a miss, unless
the source is too small to hold detail (`MIN_SOURCE_SIDE`).
"""

from __future__ import annotations

from dataclasses import dataclass

ENHANCE = ("auto", "never")  # a rule's `enhance`: may a model make pixels for its masters?
MAX_ENLARGEMENT = 2  # how many times the master's width srcset may offer where a model may run
# Sources smaller than this on their short side get Lanczos, not a model: a 1x1 or 4000x1 master
# holds no texture to infer from, and the model's run costs more than the flat result is worth.
MIN_SOURCE_SIDE = 8
BACKENDS = ("local", "remote")


@dataclass(frozen=True)
class SuperResSettings:
    """[superres] in the configuration."""

    enabled: bool = True  # use a model when one is installed (the project ships one)
    min_factor: float = 1.15  # only when the output needs more than this many times the source's pixels per side
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
    # Open every model's session and run a measured inference at start-up, not in the first
    # request: "auto" does it on a GPU (sessions there take seconds to set up), "on" and "off".
    warm_up: str = "auto"
    # Where models run: "local" (onnxruntime in this process) or "remote", a shared inference
    # server speaking the Open Inference Protocol (KServe v2: Triton, KServe, MLServer) at `url`.
    backend: str = "local"
    url: str = ""  # http://host:8000 (the v2 HTTP endpoint)
    # "ours=served" pairs, ours a model's name or name@version; a model not listed is asked for by
    # its ONNX file's stem (edgesr_x2_v2_0), the names deploy/triton/ serves.
    remote_models: tuple[str, ...] = ()
    remote_batch: int = 8  # tiles per inference request at most
    remote_concurrency: int = 8  # upscales in flight to the server (local runs stay at `concurrency`)
    remote_connect_timeout_s: float = 0.5
    remote_timeout_s: float = 30.0  # per request, when the request's own budget leaves more
    remote_failures: int = 3  # failures in a row that open the circuit (the server is not asked)
    remote_retry_s: float = 5.0  # how long it stays open before one request tries the server again

    def __post_init__(self) -> None:
        if self.min_factor < 1:
            raise ValueError(f"min_factor must be 1 or more, got {self.min_factor}")
        if self.warm_up not in ("auto", "on", "off"):
            raise ValueError(f"warm_up must be auto, on or off, got {self.warm_up!r}")
        if self.concurrency < 1 or self.budget_s < 0 or self.queue_limit < 0 or self.timeout_s <= 0:
            raise ValueError("concurrency must be 1 or more, budget_s and queue_limit 0 or more, timeout_s above 0")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be local or remote, got {self.backend!r}")
        if self.backend == "remote" and not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"url must be an http:// or https:// v2 inference endpoint for backend remote, got {self.url!r}"
            )
        bad = [pair for pair in self.remote_models if not all(pair.partition("=")[::2])]
        if bad:
            raise ValueError(f"remote_models entries are ours=served, got {', '.join(map(repr, bad))}")
        if min(self.remote_batch, self.remote_concurrency, self.remote_failures) < 1:
            raise ValueError("remote_batch, remote_concurrency and remote_failures must be 1 or more")
        if min(self.remote_connect_timeout_s, self.remote_timeout_s, self.remote_retry_s) <= 0:
            raise ValueError("remote_connect_timeout_s, remote_timeout_s and remote_retry_s must be above 0")

    @property
    def served_models(self) -> dict[str, str]:
        """remote_models as a mapping: our name or name@version -> the served model's name."""
        return {ours.strip(): served.strip() for ours, _, served in (p.partition("=") for p in self.remote_models)}


@dataclass(frozen=True)
class SuperResPolicy:
    settings: SuperResSettings = SuperResSettings()
    available: bool = True  # a model is installed (the composition root knows)

    @property
    def active(self) -> bool:
        return self.settings.enabled and self.available

    def scale(self, factor: float, enhance: str = "auto", source_side: int = MIN_SOURCE_SIDE) -> int:
        """2 or 4 when a model should make the missing pixels of a rendition whose source region
        is enlarged `factor` times per side; 0 for Lanczos (or no enlargement). A source whose
        short side is under MIN_SOURCE_SIDE pixels has no detail for a model to work from."""
        if not self.models_may_run(enhance) or factor <= self.settings.min_factor:
            return 0
        if source_side < MIN_SOURCE_SIDE:
            return 0
        return 2 if factor <= MAX_ENLARGEMENT else 4

    def width_factor(self, enhance: str) -> int:
        """How many times the master's (or its crop's) width the widest srcset candidate may be:
        as far as `scale` gives a model's x2, and no further than the source where none may run."""
        return MAX_ENLARGEMENT if self.models_may_run(enhance) else 1

    def models_may_run(self, enhance: str) -> bool:
        """The one condition both `scale` and `width_factor` read: a model is on and installed,
        and the master's rules do not say `enhance: never`."""
        return self.active and enhance == "auto"

    def may_wait(self, estimate_s: float) -> bool:
        """Whether a request waits for a model run estimated to take this long."""
        return estimate_s <= self.settings.budget_s

    @staticmethod
    def key_part(label: str) -> str:
        """What a rendition key says about the model that made its pixels (`label` from the
        Upscaler, empty when none did): a new model or version is a new key and ETag."""
        return f"superres={label}" if label else ""


OFF = SuperResPolicy(available=False)
