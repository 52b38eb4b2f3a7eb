"""Registry text as tagger shows it: one line, no control characters, bounded, and
the ``(the registry said: CODE: message)`` tail every registry error carries."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


MAX_MESSAGE = 300  # characters of a registry's message shown


def clean(text: object, limit: int = MAX_MESSAGE) -> str:
    """Registry text is untrusted: one line, no control characters, bounded length."""
    out = _CONTROL.sub(" ", str(text)).strip()
    return out if len(out) <= limit else out[: limit - 1] + "…"


def said(code: str | None, message: str | None) -> str:
    """`` (the registry said: CODE: message)``, or nothing when it said nothing."""
    text = ": ".join(x for x in (code, message) if x)
    return f" (the registry said: {text})" if text else ""
