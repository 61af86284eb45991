"""Make a rendition: the one place that goes plan -> read -> verify version -> pipeline -> result.

    renderer = Renderer(store, limits, formats, encode, pool, policy, superres)
    job = renderer.job(record, opts, fmt)   # pure and cheap: the plan, and the key that names it
    made = await renderer.render(job)       # reads the master, checks its version, runs the pipeline
    made.rendition, made.timings, made.upgrade

When the plan wants a model and its estimated run is longer than the request may wait
(`SuperResPolicy.may_wait`), or the inference server of a remote backend fails and the local model
would not finish in what is left of that wait, `render` answers with a Lanczos stand-in and sets `upgrade`:
awaiting it runs the model on the same bytes and returns the real rendition. Keeping the stand-in
away from shared caches and scheduling the upgrade are the caller's business (edge.renditions).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from origin.core.concurrency import CancelToken
from origin.core.errors import Cancelled, retry_soon
from origin.core.formats import FORMATS, EncodeSettings, FormatSettings
from origin.core.keys import rendition_key
from origin.core.limits import Limits
from origin.core.master import MasterRecord
from origin.core.memo import Memo
from origin.core.rendition import Rendition, made_by_model
from origin.core.request import Crop, RenditionOptions
from origin.imaging.credentials import Credentials, Steps
from origin.imaging.intermediates import IntermediateCache
from origin.imaging.quality import SEARCH_VERSION, sampled
from origin.isolated import expensive, render_isolated
from origin.masters.index import version_hash
from origin.masters.store import MasterStore
from origin.pipeline import RenderTools, Timings, render
from origin.plan import Plan, jpeg_shrink, plan_rendition, with_shared_decode
from origin.pool import RenderPool, Ticket
from origin.superres.policy import OFF, SuperResPolicy
from origin.superres.runtime import ModelUnavailable, Upscaler

JOBS_REMEMBERED = 4096


@dataclass(frozen=True)
class SuperRes:
    """What model runs need besides the policy: the runtime, its own queue, the upscaled regions."""

    upscaler: Upscaler
    pool: RenderPool  # model runs, apart from plain renders: one device, bounded
    intermediates: IntermediateCache


@dataclass(frozen=True)
class MasterHints:
    """What the layers above know about a master that shapes its renders (the composition root
    wires them; the defaults know nothing)."""

    enhance: Callable[[str], str] = lambda _path: "auto"  # "never" where a rule forbids models
    fresh_bytes: Callable[[MasterRecord], bytes | None] = lambda _record: None  # just read and hashed
    # The size to decode a master at once for all its declared renditions; None: decode per render.
    decode_size: Callable[[MasterRecord], tuple[int, int] | None] = lambda _record: None


@dataclass(frozen=True)
class Job:
    """One rendition to make: the plan for it and the key that names it in every cache."""

    record: MasterRecord
    plan: Plan
    key: str
    model: str = ""  # the label of the model(s) the plan runs; empty when none does


@dataclass(frozen=True)
class Made:
    rendition: Rendition
    timings: Timings = field(default_factory=Timings)  # seconds: fetch (read + verify), render, search, encode
    # Set when `rendition` is a Lanczos stand-in: awaiting it makes the model's rendition.
    upgrade: Callable[[], Awaitable[Made]] | None = None


def render_cost(job: Job) -> int:
    """The bytes a render is expected to hold at its peak: the master's, its decode at the
    shrink-on-load size, and the output (as floats when enlarged), every frame of an animation."""
    plan, header = job.plan, job.record.header
    frames = header.frames if plan.animated else 1
    bands = max(header.bands, 3)
    enlarged = plan.target_w * plan.target_h > plan.load_w * plan.load_h
    decoded = plan.load_w * plan.load_h * bands * frames
    output = plan.target_w * plan.target_h * bands * frames * (4 if enlarged else 1)
    return job.record.info.size + decoded + output


def has_upgrade(plan: Plan, encode: EncodeSettings) -> bool:
    """Whether a rendition is first made fast and provisional, then again better while the server
    is idle: its format has upgrade settings, or q=auto chose its quality from a sample."""
    searched = encode.upgrades and plan.quality_target is not None and not plan.animated
    return encode.upgraded(plan.format) is not None or (
        searched and sampled(plan.target_w, plan.target_h, plan.format, enlarged=plan.upscale != "none")
    )


class Renderer:
    def __init__(
        self,
        store: MasterStore,
        limits: Limits,
        formats: FormatSettings,
        encode: EncodeSettings,
        pool: RenderPool,
        policy: SuperResPolicy = OFF,
        superres: SuperRes | None = None,
        hints: MasterHints | None = None,
        decoded: IntermediateCache | None = None,
        credentials: Credentials | None = None,
        metadata: bool = True,
        isolate_megapixels: float = 0.0,
    ):
        self.store = store
        self.credentials = credentials  # C2PA manifests, when [provenance] c2pa is on
        self.isolate_megapixels = isolate_megapixels  # renders this big run in a killable child
        self.limits = limits
        self.formats = formats
        self.pool = pool
        self.policy = policy if superres is not None else OFF
        self.superres = superres
        self.hints = hints or MasterHints()
        self.tools = RenderTools(
            encode,
            superres.upscaler if superres else None,
            superres.intermediates if superres else None,
            decoded,
            metadata,
        )
        # Every setting that changes the bytes of a rendition, whatever the request.
        parts = [encode.fingerprint(), formats.fingerprint(), f"side{limits.max_output_side}"]
        parts += [credentials.fingerprint] if credentials else []
        parts += [] if metadata else ["metadata=off"]
        self.fingerprint = "|".join(parts)
        # Jobs of recent requests: a cache hit then costs a dict lookup, not a plan and a hash. A job
        # depends only on the master's version, the options and the format (everything else is fixed
        # for this renderer's life).
        self._jobs: Memo[tuple[str, str, RenditionOptions, str], Job] = Memo(JOBS_REMEMBERED)

    def job(self, record: MasterRecord, opts: RenditionOptions, fmt: str) -> Job:
        """Plan a rendition and name it. Raises a 400/422 Problem for a plan that cannot be met,
        before anything is read."""
        remembered = (record.path, record.version, opts, fmt)
        job = self._jobs.get(remembered)
        if job is None or job.record != record:
            job = self._jobs[remembered] = self._plan(record, opts, fmt)
        return job

    def _plan(self, record: MasterRecord, opts: RenditionOptions, fmt: str) -> Job:
        plan = plan_rendition(
            opts, record.header, fmt, self.limits, self.formats, self.policy, self.hints.enhance(record.path)
        )
        plan = with_shared_decode(plan, self.hints.decode_size(record) if self.tools.decoded is not None else None)
        model = self.superres.upscaler.label(plan.superres_scale) if plan.superres_scale and self.superres else ""
        # Both change pixels (a little, for the shared decode): both name the key, so one key is one set of bytes.
        shared = f"decode={plan.decode_at[0]}x{plan.decode_at[1]}" if plan.decode_at else ""
        search = f"search={SEARCH_VERSION}" if plan.quality_target is not None else ""
        shrink = jpeg_shrink(plan.jpeg_size, *(plan.decode_at or (plan.load_w, plan.load_h)))
        decoder = f"jpegshrink={shrink}" if shrink else ""  # renditions made before it keep their keys
        parts = (self.fingerprint, SuperResPolicy.key_part(model), shared, search, decoder)
        fingerprint = "|".join(filter(None, parts))
        return Job(
            record, plan, rendition_key(record.path, record.version, self._keyed(opts, fmt), fmt, fingerprint), model
        )

    def _keyed(self, opts: RenditionOptions, fmt: str) -> RenditionOptions:
        """The options as the key sees them: a quality that changes nothing (a lossless format's,
        or the format's own default spelled out) is dropped, so `fm=avif&q=50` and `fm=avif` are
        one entry. Not under `auto_quality`, where no `q` means a searched one."""
        if not isinstance(opts.q, int):  # none, or "auto"
            return opts
        if not FORMATS[fmt].lossy or (not self.formats.auto_quality and opts.q == self.formats.quality(fmt, opts.dpr)):
            return replace(opts, q=None)
        return opts

    async def render(self, job: Job, better: bool = False) -> Made:
        """The rendition `job` names. WebP and AVIF come encoded fast and `provisional` (see
        EncodeSettings.upgraded); `better` makes the upgrade that replaces them."""
        # Admitted before the master is read: a burst of misses on big masters is answered 503
        # rather than holding all their bytes (and decodes) at once.
        ticket = self.pool.admit(render_cost(job))
        try:
            started = time.perf_counter()
            data = self.hints.fresh_bytes(job.record)
            verified = data is not None
            if data is None:
                data = await self.store.read(job.record.info)
            fetched = time.perf_counter() - started
            sr = self.superres
            if not job.model or sr is None:
                return await self._run(self.pool, data, job, fetched, verified, ticket, better=better)
            plan = job.plan
            region = plan.region or Crop(0, 0, plan.load_w, plan.load_h)
            estimate = await asyncio.to_thread(sr.upscaler.estimate_seconds, region.w, region.h, plan.superres_scale)
            if self.policy.may_wait(estimate):
                ticket.release()  # the model's own pool admits it
                try:
                    deadline = time.monotonic() + self.policy.settings.budget_s
                    return await self._run(sr.pool, data, job, fetched, verified, deadline=deadline, better=better)
                except ModelUnavailable:  # the inference server failed, the local model is too slow
                    ticket = self.pool.admit(render_cost(job))
            stand_in = await self._run(
                self.pool, data, replace(job, plan=replace(plan, superres_scale=0)), fetched, verified, ticket
            )
            return replace(stand_in, upgrade=lambda: self._run(sr.pool, data, job, 0.0, True, better=better))
        finally:
            if not ticket.handed:
                ticket.release()

    async def _run(
        self,
        pool: RenderPool,
        data: bytes,
        job: Job,
        fetched: float,
        known: bool = False,
        ticket: Ticket | None = None,
        deadline: float | None = None,
        better: bool = False,
    ) -> Made:
        """Check the bytes are the planned version (unless `known`: the index just hashed them) and
        render them, in `pool`; a model run in it must end by `deadline` (time.monotonic()).
        `better`: the upgrade (the format's upgrade settings, q=auto searched on the whole image);
        else provisional when there is one (see `has_upgrade`)."""
        upgraded = self.tools.encode.upgraded(job.plan.format)
        tools = replace(self.tools, encode=upgraded or self.tools.encode, thorough=True) if better else self.tools
        provisional = not better and has_upgrade(job.plan, self.tools.encode)

        def work(token: CancelToken) -> Made:
            token.deadline = deadline
            if token.cancelled:  # the budget ran out while queued
                raise Cancelled()
            started = time.perf_counter()
            if not known and version_hash(data) != job.record.version:
                # Replaced between stat and read: never cache these bytes under the old version.
                raise retry_soon("master changed during the request; retry")
            verified = time.perf_counter() - started
            plan, version = job.plan, job.record.version
            if expensive(plan, job.record.header.format, self.isolate_megapixels):
                rendition, timings = render_isolated(
                    data, plan, tools.encode, tools.metadata, token, version, tools.thorough
                )
            else:
                rendition, timings = render(data, plan, tools, token, version)
            if provisional:
                rendition = replace(rendition, provisional=True)
            if self.credentials is not None:
                rendition = self._credentials(self.credentials, rendition, data, job, timings)
            # Reading the master and checking it is still the version we planned for are one phase.
            return Made(rendition, Timings({"fetch": fetched + verified, **timings}, notes=timings.notes))

        return await pool.run(work, ticket)

    @staticmethod
    def _credentials(
        credentials: Credentials, rendition: Rendition, data: bytes, job: Job, timings: Timings
    ) -> Rendition:
        """The rendition with its C2PA manifest (noted in `timings.notes`), or as it is when the
        master has none, or when the manifest would push it past the URL's `max_bytes`."""
        started = time.perf_counter()
        plan, header = job.plan, job.record.header
        steps = Steps(
            title=job.record.path.rsplit("/", 1)[-1],
            master_format=header.format,
            format=rendition.format,
            width=rendition.width,
            height=rendition.height,
            cropped=plan.region is not None or plan.smart_crop,
            resized=(rendition.width, rendition.height) != (header.width, header.height),
            model=rendition.upscale if made_by_model(rendition.upscale) else "",
            scale=plan.superres_scale,
        )
        signed = credentials.sign(rendition.body, data, steps)
        timings["credentials"] = time.perf_counter() - started
        if signed is None or (plan.max_bytes is not None and len(signed) > plan.max_bytes):
            return rendition
        timings.notes["credentials"] = "c2pa"
        return replace(rendition, body=signed)

    def shutdown(self) -> None:
        self.pool.shutdown()
        if self.superres is not None:
            self.superres.pool.shutdown()
