"""Reading a ``multipart/form-data`` body, for every dialect.

Litestar's own ``request.form()`` fails with a 500 on a text field that is not UTF-8; here that
field is named in a 400. Files stay ``UploadFile`` objects (spooled), text fields are decoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict, UploadFile
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser  # type: ignore[import-untyped]

from app.errors import InvalidRequest, echo


async def read_form(request: Request[Any, Any, Any]) -> FormMultiDict:
    """A multipart body's parts: files as ``UploadFile``, text fields decoded.

    Litestar's own ``request.form()`` fails with a 500 on a text field that is not UTF-8; here
    that field is named in a 400.
    """
    _, options = request.content_type
    boundary = options.get("boundary")
    if not boundary:
        raise InvalidRequest("multipart/form-data needs a boundary in its Content-Type", param="file")
    items: list[tuple[str, Any]] = []
    try:
        with PushMultipartParser(boundary.encode(), max_segment_count=request.app.multipart_form_part_limit) as parser:
            segment: MultipartSegment | None = None
            data: bytearray | UploadFile = bytearray()
            async for chunk in _with_end(request.stream()):
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment, data = part, _new_part(part)
                    elif part:
                        await data.write(part) if isinstance(data, UploadFile) else data.extend(part)
                    elif segment is not None:
                        items.append((segment.name, await _finish_part(segment, data)))
                        segment, data = None, bytearray()
    except ParserError:
        await _close_uploads(items)
        raise InvalidRequest("The multipart/form-data body is malformed", param="file") from None
    except ParserLimitReached:
        await _close_uploads(items)
        raise InvalidRequest("The multipart/form-data body has too many parts", param="file") from None
    except InvalidRequest:
        await _close_uploads(items)
        raise
    return FormMultiDict(items)


async def _with_end(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        if chunk:
            yield chunk
    yield b""  # the parser's end of input


def _new_part(segment: MultipartSegment) -> bytearray | UploadFile:
    if not segment.filename:
        return bytearray()
    headers = dict(segment.headerlist)
    return UploadFile(content_type=segment.content_type or "text/plain", filename=segment.filename, headers=headers)


async def _finish_part(segment: MultipartSegment, data: bytearray | UploadFile) -> str | UploadFile:
    if isinstance(data, UploadFile):
        await data.seek(0)
        return data
    try:
        return data.decode(segment.charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        name = echo(segment.name)
        raise InvalidRequest(f"The multipart field {name} is not valid UTF-8 text", param=name) from None


async def _close_uploads(items: list[tuple[str, Any]]) -> None:
    for _, value in items:
        if isinstance(value, UploadFile):
            await value.close()
