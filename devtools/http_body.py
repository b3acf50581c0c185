"""Reading an HTTP/1.1 request body (Content-Length or chunked) for the local servers in devtools."""

from __future__ import annotations

from email.message import Message
from io import BufferedIOBase
from typing import BinaryIO

MAX_BODY_BYTES = 100 * 1024 * 1024


def read_request_body(
    headers: Message, stream: BufferedIOBase | BinaryIO, max_bytes: int = MAX_BODY_BYTES
) -> bytes:
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while stream.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            total += size
            if total > max_bytes:
                raise ValueError("request body too large")
            chunks.append(stream.read(size))
            stream.readline()
        return b"".join(chunks)
    length = int(headers.get("Content-Length") or 0)
    if length > max_bytes:
        raise ValueError("request body too large")
    return stream.read(length) if length else b""
