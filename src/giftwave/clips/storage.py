"""Where clip files live: one small interface, chosen by URL in one place (``open_store``).

    file:///var/lib/giftwave/clips  or a plain path     LocalStore (the default)
    s3://bucket/prefix?endpoint=http://127.0.0.1:9000   S3Store, any S3-compatible server

Keys are relative names made by giftwave (``cl_…/source.mp4``), never user input. A store
answers byte ranges as an iterator of chunks, so a file is never read whole into memory.
Reads and writes block: callers run them on worker threads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK_BYTES: Final = 256 * 1024


class StoreError(Exception):
    """The store could not be reached or refused the operation."""


class ObjectMissing(StoreError):
    pass


class ClipStore(Protocol):
    def put(self, key: str, source: Path, content_type: str) -> None:
        """Copy a local file in, atomically: the key is the whole file or nothing."""

    def size(self, key: str) -> int:
        """The object's size in bytes; ObjectMissing when there is none."""

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (inclusive), in chunks of at most CHUNK_BYTES."""

    def delete(self, key: str) -> None:
        """Remove the object; no error when it is not there."""

    def local_path(self, key: str) -> Path | None:
        """The object's file when the store is a folder of this machine (served by Starlette's
        FileResponse); None when it is remote (served from ``read``)."""

    def describe(self) -> str:
        """Where the store is, for logs (no secrets)."""


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        assert path.is_relative_to(self.root), key  # keys are ours, never user input
        return path

    def put(self, key: str, source: Path, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            shutil.copyfile(source, partial)
            with partial.open("rb") as f:
                os.fsync(f.fileno())
            partial.replace(path)  # readers see the whole file or none
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(f"could not store {key}: {exc}") from exc

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            f = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        with f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(CHUNK_BYTES, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the clip's folder, once empty

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def describe(self) -> str:
        return f"file://{self.root}"


class S3Store:
    """An S3-compatible bucket through the official SDK (boto3). Credentials come from the
    SDK's usual chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role)."""

    def __init__(self, bucket: str, prefix: str, endpoint: str | None, region: str) -> None:
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix, self.endpoint = bucket, prefix.strip("/"), endpoint
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},  # works with any S3-compatible server
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: Exception, key: str) -> StoreError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return ObjectMissing(key)
        return StoreError(f"S3 {self.bucket}/{self._key(key)}: {exc}")

    def put(self, key: str, source: Path, content_type: str) -> None:
        try:  # a PUT (or a multipart upload, completed last) is atomic in S3
            self._client.upload_file(
                str(source), self.bucket, self._key(key), ExtraArgs={"ContentType": content_type}
            )
        except Exception as exc:
            raise self._fail(exc, key) from exc

    def size(self, key: str) -> int:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._fail(exc, key) from exc
        return int(head["ContentLength"])

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            got = self._client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end}"
            )
        except Exception as exc:
            raise self._fail(exc, key) from exc
        body = got["Body"]
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._fail(exc, key) from exc

    def local_path(self, key: str) -> Path | None:
        return None

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"


def open_store(url: str) -> ClipStore:
    """The store a ``GIFTWAVE_CLIP_STORE`` value names: ``file://``, ``s3://`` or a path."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError("an s3:// clip store names its bucket: s3://bucket/prefix")
        query = parse_qs(parts.query)
        endpoint = query.get("endpoint", [None])[0]
        region = query.get("region", ["us-east-1"])[0]
        return S3Store(parts.netloc, unquote(parts.path), endpoint, region)
    if parts.scheme == "file":
        return LocalStore(Path(unquote(parts.path)))
    if parts.scheme == "":
        return LocalStore(Path(url))
    raise ValueError(f"unknown clip store {parts.scheme}://: use file://, s3:// or a path")
