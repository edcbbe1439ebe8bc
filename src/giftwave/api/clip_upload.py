"""A multipart upload read as it arrives: the file part goes straight to a temporary file and
the read stops the moment it passes the size limit, so an oversized upload is neither kept in
memory nor written whole to disk (Starlette's own form parsing spools every file first)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Final

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

MAX_FIELD_BYTES: Final = 1024  # a title
MAX_FIELDS: Final = 8
# What a form adds to its file: boundaries and part headers. A body whose declared length
# passes the file limit by more is refused before a byte is read.
FORM_OVERHEAD_BYTES: Final = 16 * 1024


class UploadTooLarge(Exception):
    pass


class BadForm(Exception):
    pass


class _Form:
    """The parser's callbacks: fields in memory (small), one file part to ``dest``."""

    def __init__(self, dest: Path, max_file_bytes: int) -> None:
        self.dest, self.max_file_bytes = dest, max_file_bytes
        self.fields: dict[str, str] = {}
        self.file_bytes = 0
        self.file_name: str | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = b"", b""
        self._name: str | None = None
        self._is_file = False
        self._text = bytearray()
        self._file: BinaryIO | None = None

    def on_part_begin(self) -> None:
        self._headers, self._name, self._is_file, self._text = {}, None, False, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        kind, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if kind != b"form-data" or b"name" not in options:
            raise BadForm("every part needs Content-Disposition: form-data; name=…")
        self._name = options[b"name"].decode(errors="replace")
        if b"filename" in options:
            if self._file is not None or self._name != "file":
                raise BadForm("send one file, in the field 'file'")
            self._is_file = True
            self.file_name = options[b"filename"].decode(errors="replace")
            self._file = self.dest.open("wb")
        elif len(self.fields) >= MAX_FIELDS:
            raise BadForm("too many fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            assert self._file is not None
            self.file_bytes += end - start
            if self.file_bytes > self.max_file_bytes:
                raise UploadTooLarge()
            # Page-cache writes of one network chunk: microseconds, not worth a thread hop.
            self._file.write(data[start:end])
        else:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise BadForm(f"field {self._name!r} is too long")

    def on_part_end(self) -> None:
        if not self._is_file and self._name is not None:
            self.fields[self._name] = self._text.decode(errors="replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def upload_body_max_bytes(max_file_bytes: int) -> int:
    """An upload's body limit (api/body_limit.py): its file and a form's overhead. A body
    declared longer is refused before a byte is read; the file's own limit is checked here."""
    return max_file_bytes + FORM_OVERHEAD_BYTES


async def receive_upload(request: Request, dest: Path, max_file_bytes: int) -> _Form:
    """Read the request's form into its fields and ``dest``; the caller deletes ``dest``."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadForm("send multipart/form-data with a boundary")
    form = _Form(dest, max_file_bytes)
    callbacks = {
        "on_part_begin": form.on_part_begin,
        "on_part_data": form.on_part_data,
        "on_part_end": form.on_part_end,
        "on_header_field": form.on_header_field,
        "on_header_value": form.on_header_value,
        "on_header_end": form.on_header_end,
        "on_headers_finished": form.on_headers_finished,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (UploadTooLarge, BadForm):
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        raise BadForm(f"malformed multipart body: {exc}") from exc
    finally:
        form.close()
    if form.file_name is None:
        raise BadForm("no file: send the video in the field 'file'")
    return form
