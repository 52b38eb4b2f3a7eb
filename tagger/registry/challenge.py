"""``WWW-Authenticate`` challenges (RFC 7235), parsed without I/O.

Hand-written: requests and urllib3 have no public parser for challenges, and the
registry token flow needs the parameters (realm, service, scope, error).

One header may hold several challenges (``Negotiate, Basic realm="x"`` from SPNEGO
fronts; requests joins repeated headers with ``, `` too); parameter values may be
quoted strings with commas and backslash escapes inside.
"""

from __future__ import annotations

Challenge = tuple[str, dict[str, str]]

PREFERRED = ("bearer", "basic")  # the schemes tagger answers, best first
_SEPARATORS = " \t,="


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted string starting at ``text[i] == '"'``, unescaped, and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in ``header``, in order: scheme (lower case) and parameters
    (names in lower case). A token68 (``Negotiate abc==``) is skipped."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    while i < n:
        i = _skip(header, i, " \t,")
        start = i
        while i < n and header[i] not in _SEPARATORS:
            i += 1
        token = header[start:i]
        j = _skip(header, i, " \t")
        if not token:
            i = j + 1  # a stray "=": skip it
            continue
        if j < n and header[j] == "=" and out and header[j + 1 : j + 2] not in ("=", ""):
            j = _skip(header, j + 1, " \t")
            if header[j : j + 1] == '"':
                value, i = _quoted(header, j)
            else:
                end = header.find(",", j)
                end = n if end < 0 else end
                value, i = header[j:end].strip(), end
            out[-1][1][token.lower()] = value
        elif j < n and header[j] == "=":
            i = _skip(header, j, "=")  # a token68's padding, or garbage
        else:
            out.append((token.lower(), {}))
            i = j
    return out


def parse_challenge(header: str) -> Challenge:
    """The challenge tagger answers in ``header``: Bearer before Basic wherever they
    stand; else the first one (its parameters still explain a refusal)."""
    challenges = parse_challenges(header)
    for scheme in PREFERRED:
        for c in challenges:
            if c[0] == scheme:
                return c
    return challenges[0] if challenges else ("", {})
