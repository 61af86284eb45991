"""Masters in S3 (or any S3-compatible store), through aiobotocore.

`stat` is a HEAD: size and ETag without downloading, and the ETag is the identity that version
hashes are cached by. `read` asks for exactly that ETag (If-Match), so a master replaced in
between is noticed instead of hashed under the old version, and stops reading as soon as the byte
limit is passed. Store failures are 502 (or 504 on time-outs) with no-store: nothing is cached.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from origin.core.errors import Problem, retry_soon
from origin.core.paths import is_safe_relative
from origin.masters.s3_settings import S3Settings, split_s3_url
from origin.masters.store import MasterInfo

CHUNK = 256 * 1024
# What a store failure can raise: botocore's own errors, and the transport's for a body cut short.
TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError, OSError, asyncio.TimeoutError)


def _store_error(error: Exception, what: str) -> Problem:
    if isinstance(error, (ReadTimeoutError, ConnectTimeoutError, asyncio.TimeoutError)):
        return Problem(504, f"master store timed out while {what}")
    return Problem(502, f"master store failed while {what}")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _without_expect_continue(request: Any, **_kwargs: Any) -> None:
    """botocore asks for `100 Continue` before uploading a body, and aiohttp waits for it with no
    time-out: a store that accepts the connection and never answers would hang every PUT (and the
    request behind it) forever. Without it, the read time-out covers the whole exchange."""
    if "Expect" in request.headers:
        del request.headers["Expect"]


class S3Connection:
    """One lazily opened aiobotocore client, shared by everything that talks to one store."""

    def __init__(self, settings: S3Settings):
        self.settings = settings
        self._client: Any = None
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        async with self._lock:
            if self._client is None:
                s = self.settings
                config = AioConfig(
                    connect_timeout=s.connect_timeout_s,
                    read_timeout=s.read_timeout_s,
                    # total_max_attempts counts the first try; botocore's max_attempts would be retries only.
                    retries={"total_max_attempts": s.max_attempts, "mode": "standard"},
                    s3={"addressing_style": s.addressing_style},
                )
                creator = get_session().create_client(
                    "s3", region_name=s.region, endpoint_url=s.endpoint_url or None, config=config
                )
                self._client = await self._stack.enter_async_context(creator)
                self._client.meta.events.register("before-send.s3", _without_expect_continue)
        return self._client

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None


class S3MasterStore:
    def __init__(self, url: str, settings: S3Settings, max_bytes: int):
        self.bucket, self.prefix = split_s3_url(url)
        self.max_bytes = max_bytes
        self._connection = S3Connection(settings)

    async def _s3(self) -> Any:
        return await self._connection.client()

    def _key(self, path: str) -> str:
        return self.prefix + path

    async def stat(self, path: str) -> MasterInfo | None:
        if not is_safe_relative(path):
            return None
        try:
            head = await (await self._s3()).head_object(Bucket=self.bucket, Key=self._key(path))
        except ClientError as e:
            if _code(e) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _store_error(e, "looking up a master") from None
        except TRANSPORT_ERRORS as e:
            raise _store_error(e, "looking up a master") from None
        modified = head.get("LastModified")
        return MasterInfo(path, int(head["ContentLength"]), head["ETag"], modified.timestamp() if modified else None)

    async def read(self, info: MasterInfo) -> bytes:
        try:
            response = await (await self._s3()).get_object(
                Bucket=self.bucket, Key=self._key(info.path), IfMatch=info.identity
            )
            chunks: list[bytes] = []
            total = 0
            async with response["Body"] as body:
                while chunk := await body.read(CHUNK):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise Problem(413, f"master is over the limit of {self.max_bytes} bytes")
                    chunks.append(chunk)
        except ClientError as e:
            if _code(e) in ("PreconditionFailed", "412"):
                raise retry_soon("master changed during the request; retry") from None
            if _code(e) in ("404", "NoSuchKey"):
                raise Problem(404, f"no master at {info.path!r}") from None
            raise _store_error(e, "reading a master") from None
        except TRANSPORT_ERRORS as e:
            raise _store_error(e, "reading a master") from None
        data = b"".join(chunks)
        if len(data) != info.size:
            raise Problem(502, "master store returned a short body")
        return data

    async def ready(self) -> str | None:
        return None  # a bucket outage is the fleet's: health() reports it

    async def health(self) -> str | None:
        try:
            await (await self._s3()).head_bucket(Bucket=self.bucket)
        except (ClientError, *TRANSPORT_ERRORS) as e:
            return f"s3 bucket {self.bucket} is not reachable: {type(e).__name__}"
        return None

    async def close(self) -> None:
        await self._connection.close()
