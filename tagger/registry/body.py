"""A streamed upload body of known length: exactly ``size`` bytes, of the right digest,
whatever the source does (transport.py's docstring has the whole security picture)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from ..errors import RegistryUnreachable
from . import errors
from .abort import check_aborted
from .errors import refusals


class Body:
    """A file-like body of known length streamed from a source, so requests sends
    Content-Length and never holds a whole blob in memory.

    It sends exactly ``length`` bytes, whatever the source gives: a source that gives
    more, or fewer, or bytes of another digest, raises before the body's last byte is
    handed over, so the registry never receives a complete body it would accept, and
    nothing the source sent beyond ``length`` ever reaches the connection (where it
    would be read as the next request)."""

    def __init__(
        self, chunks: Iterator[bytes], length: int, digest: str | None = None, what: str = ""
    ) -> None:
        self._chunks = chunks
        self._length = length
        self._digest = digest
        self._what = what or "the blob"
        self._sent = 0
        self._buf = b""  # the current chunk
        self._pos = 0  # how much of it was read
        self.hash = hashlib.sha256()
        self.pause: Callable[[float], None] | None = None  # between chunks: a signal stops it

    def __len__(self) -> int:
        return self._length

    def _next(self) -> bytes | None:
        check_aborted(f"sending {self._what}")
        if self.pause is not None:
            self.pause(0)
        try:
            return next(self._chunks, None)
        except OSError as e:  # the source's file failed mid-stream
            raise RegistryUnreachable(
                f"reading {self._what} from its source failed: {errors.net_reason(e)}",
                "the source stopped sending; run again",
            ) from None

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, cut from the source's chunks without joining them (only
        pieces of the requested size are allocated, so memory stays flat)."""
        parts: list[bytes] = []
        want = self._length - self._sent
        if n is not None and n >= 0:
            want = min(want, n)
        while want > 0:
            if self._pos >= len(self._buf):
                chunk = self._next()
                if chunk is None:
                    raise refusals.short_source(self._what, self._sent, self._length)
                self._buf, self._pos = chunk, 0
            piece = self._buf[self._pos : self._pos + want]
            self._pos += len(piece)
            want -= len(piece)
            self._sent += len(piece)
            parts.append(piece)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.hash.update(out)
        if self._sent == self._length and out:
            self._check_end()
        return out

    def _check_end(self) -> None:
        """Before the last bytes go: the source must be at its end, with the digest."""
        while self._pos >= len(self._buf):
            chunk = self._next()
            if chunk is None:
                break
            self._buf, self._pos = chunk, 0
        if self._pos < len(self._buf):
            raise refusals.long_source(self._what, self._length)
        if self._digest is not None:
            served = "sha256:" + self.hash.hexdigest()
            if served != self._digest:
                raise refusals.wrong_digest(self._what, served)
