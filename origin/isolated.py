"""Renders that run in a child process, killed the moment their budget runs out.

libvips checks a render's cancel token between tiles while it decodes and resizes, but an encode
under way (libheif's AV1, the JPEG, WebP and PNG encoders) and librsvg's rasterisation run to
their end: in a thread, a render past its 504 keeps burning CPU and holding its pool slot until
then (a 2560x1600 AVIF at effort 9: 27 s here). Renders that can take that long (`expensive`: a
big output, or an SVG master) run in a child forked from a forkserver that has the pipeline
loaded; the pool thread waits on it and kills it as soon as the token is cancelled, so the slot
and the CPU are free within `POLL_S`. Everything else stays in threads: a child costs a fork and
the master's bytes through a pipe (tens of ms), nothing next to a render of that size.

Super-resolution renders stay in threads: the model's sessions live in the parent, and its tiles
check the token between runs.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from origin.core.concurrency import CancelToken, run_in_background
from origin.core.errors import Cancelled, Problem
from origin.core.formats import EncodeSettings
from origin.core.rendition import Rendition
from origin.imaging.intermediates import IntermediateCache
from origin.pipeline import RenderTools, Timings, render
from origin.plan import Plan

# A fork server: started once (a fresh interpreter that imports the pipeline), then every child
# is a fork of it, single-threaded and with libvips loaded, not of the threaded server.
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["origin.pipeline"])
POLL_S = 0.05  # how often the waiting thread looks at the token
SHARED_DECODE_BYTES = 1 << 30  # the child's own cache for a plan that starts from a shared decode


def expensive(plan: Plan, master_format: str, megapixels: float) -> bool:
    """Whether a render may run long in phases nothing can interrupt: an output (all frames) of
    at least `megapixels`, or any SVG master. `megapixels` 0: never (every render in a thread)."""
    if megapixels <= 0 or plan.superres_scale:
        return False
    if master_format == "svg":
        return True
    return plan.target_w * plan.target_h >= megapixels * 1_000_000


def render_isolated(
    data: bytes,
    plan: Plan,
    encode: EncodeSettings,
    metadata: bool,
    token: CancelToken,
    source_id: str,
    thorough: bool = False,
) -> tuple[Rendition, Timings]:
    """origin.pipeline.render in a child process; Cancelled (the child killed) once `token` is.
    `thorough`: q=auto searched on the whole image (RenderTools.thorough, an upgrade's)."""
    receive, send = CONTEXT.Pipe(duplex=False)
    child = CONTEXT.Process(
        target=_child,
        args=(send, data, plan, encode, metadata, source_id, thorough),
        name="isolated-render",
        daemon=True,
    )
    child.start()
    send.close()
    try:
        while not receive.poll(POLL_S):
            if token.cancelled:
                raise Cancelled()
            if not child.is_alive() and not receive.poll(0):
                raise _died(child)
        message: tuple[Any, ...] = receive.recv()
    except EOFError:
        raise _died(child) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receive.close()
    kind, *rest = message
    if kind == "ok":
        rendition, phases, notes = rest
        return rendition, Timings(phases, notes=notes)
    if kind == "problem":
        status, detail, extra, headers = rest
        raise Problem(status, detail, extra, headers)
    raise Problem(422, f"rendition could not be made: {rest[0]}")


def _died(child: Any) -> Problem:
    return Problem(422, f"rendition could not be made: its renderer process died ({child.exitcode})")


def _child(
    send: Connection, data: bytes, plan: Plan, encode: EncodeSettings, metadata: bool, source_id: str, thorough: bool
) -> None:
    run_in_background()  # as nice as the render threads: hits and /healthz come first
    decoded = IntermediateCache(SHARED_DECODE_BYTES) if plan.decode_at else None  # the pixels a thread makes
    tools = RenderTools(encode, decoded=decoded, metadata=metadata, thorough=thorough)
    try:
        rendition, timings = render(data, plan, tools, None, source_id)
        send.send(("ok", rendition, dict(timings), timings.notes))
    except Problem as problem:  # sent as its fields: exceptions with keyword fields do not pickle
        send.send(("problem", problem.status, problem.detail, problem.extra, problem.headers))
    except Exception as e:  # noqa: BLE001 (anything else: the parent answers 422 with its name)
        send.send(("error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
    finally:
        send.close()
