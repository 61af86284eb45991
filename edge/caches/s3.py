"""A rendition tier in S3, shared by every replica: what replica A rendered, replica B serves.

Entries use the disk tier's format (header + checksum), so a damaged or partial object is a miss,
never served. S3 writes are atomic per object, so no temp-and-rename is needed here. A store
that fails is a miss (or a skipped write), never an error for the request: this tier is an
optimisation, and the caches in front of it and the render path behind it still work.
"""

from __future__ import annotations

import logging

from botocore.exceptions import ClientError

from edge.caches.entry import decode_entry, encode_entry
from origin.core.rendition import Rendition
from origin.masters.s3 import TRANSPORT_ERRORS, S3Connection, S3Settings, split_s3_url

log = logging.getLogger(__name__)


class S3Tier:
    name = "edge-s3"

    def __init__(self, url: str, settings: S3Settings):
        self.bucket, self.prefix = split_s3_url(url)
        self._connection = S3Connection(settings)

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> Rendition | None:
        try:
            s3 = await self._connection.client()
            response = await s3.get_object(Bucket=self.bucket, Key=self._key(key))
            async with response["Body"] as body:
                raw = await body.read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                log.warning("s3 rendition tier: get failed: %s", e)
            return None
        except TRANSPORT_ERRORS as e:
            log.warning("s3 rendition tier: get failed: %s", type(e).__name__)
            return None
        return decode_entry(raw)

    async def put(self, key: str, rendition: Rendition) -> bool:
        try:
            s3 = await self._connection.client()
            await s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=encode_entry(rendition))
        except (ClientError, *TRANSPORT_ERRORS) as e:
            log.warning("s3 rendition tier: put failed: %s", type(e).__name__)
            return False
        return True

    async def purge(self, prefix: str) -> int:
        s3 = await self._connection.client()
        removed = 0
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
                removed += len(objects)
        return removed

    async def ready(self) -> str | None:
        return None  # shared by every replica: an outage there is reported by health(), not as unreadiness

    async def health(self) -> str | None:
        try:
            await (await self._connection.client()).head_bucket(Bucket=self.bucket)
        except (ClientError, *TRANSPORT_ERRORS) as e:
            return f"s3 rendition tier {self.bucket} is not reachable: {type(e).__name__}"
        return None

    async def close(self) -> None:
        await self._connection.close()
