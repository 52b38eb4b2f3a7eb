"""A registry's answer as tagger reads it: requests' ``Response`` for the status, the
headers and the URL, and the body tagger read itself, bounded (transport.py), instead
of requests' ``content``, which reads a body whole whatever its size. Streamed answers
(a blob) are read from ``response`` with ``Transport.chunks`` and have no ``content``.

Our own small class rather than writing into requests' private ``Response._content``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import requests


class Reply:
    def __init__(self, response: requests.Response, content: bytes | None = None) -> None:
        self.response = response
        self._content = content

    @property
    def status_code(self) -> int:
        return int(self.response.status_code)

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive, as requests gives them."""
        return self.response.headers

    @property
    def url(self) -> str:
        return str(self.response.url)

    @property
    def links(self) -> dict[Any, Any]:
        """The ``Link`` header, parsed (pagination)."""
        return dict(self.response.links)

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ValueError("a streamed answer has no content: read it with chunks")
        return self._content

    def read(self, content: bytes) -> Reply:
        """This answer with its body, once read."""
        return Reply(self.response, content)

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json.loads(self.content)

    def close(self) -> None:
        self.response.close()
