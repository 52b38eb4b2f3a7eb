"""Keep secrets out of everything tagger prints: messages, logs, tracebacks, --json.

Two layers, because either alone can miss something:

- **known secrets**: every password, identity token and bearer token tagger handles is
  registered here when it is read or received (with the forms it travels in: the
  ``user:password`` base64 of a Basic header and a Docker config ``auth`` field, and the
  URL-encoded form of a form post); any occurrence is replaced;
- **shapes of secrets**: ``Authorization:`` header values, ``Basic``/``Bearer``
  credentials, JWTs, and ``password``/``secret``/``token``/``auth`` keys with a real value
  in JSON (``"token": "…"``), forms and env dumps (``token=…``) or ``key: value`` text
  (a quoted value, or one that is not a plain word); never a word because of its name,
  so ``acme/auth:1.2.3``, ``/etc/passwd: No such file`` and "the password or token:
  echo" stay as they are.

``redact`` is applied to every TaggerError's text when it is made (errors.py), to the
tracebacks and last-resort errors the entry point prints, and, through
``RedactingFilter``, to every log record tagger's handler prints.

``printable`` is the other half of output safety: text from a registry, a source or git
(an error message, a tag, a label) must not forge a GitHub Actions workflow command (a
line starting with ``::``, e.g. ``::add-mask::`` or ``::stop-commands::``), move a
terminal's cursor or colour it (ESC), or reorder what a reader sees (Unicode bidi
controls). It escapes every control character, and with ``lines=True`` keeps line
breaks but starts a line that would begin with ``::`` with a backslash. It is applied
wherever text leaves: TaggerError messages and hints, the table, notes and warnings,
tracebacks and log records.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import urllib.parse
from collections.abc import Mapping

MASK = "<redacted>"
MIN_LENGTH = 4  # shorter values would mask ordinary words and digits everywhere

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

_KEYS = (
    r"(?:password|passwd|secret|auth|identity_?token|refresh_token|access_token"
    r"|registry_?token|token)"
)
_SHAPES = [
    # an Authorization header, as text or in a repr'd dict: the value up to the line end
    # or the closing quote
    (
        re.compile(
            r"((?<![A-Za-z0-9/.:_-])(?:proxy-)?authorization"
            r"(?:['\"]\s*:\s*|:\s+|\s*=\s*)['\"]?)[^'\"\r\n]+",
            re.I,
        ),
        r"\1" + MASK,
    ),
    # Basic / Bearer credentials: not a challenge's "Bearer realm=...", not plain words
    (
        re.compile(
            r"\b(Basic|Bearer)(\s+)(?![A-Za-z]+=)(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}",
            re.I,
        ),
        r"\1\2" + MASK,
    ),
    # a JWT anywhere
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # secret keys with a real value, never a word because of its name (an image named
    # acme/auth, the path /etc/passwd, "the password or token: echo ..." stay as they are):
    # JSON or a repr'd dict: "password": "value"
    (
        re.compile(rf"""((['"]){_KEYS}\2\s*:\s*(['"]))(?!<redacted>)(?:(?!\3).)+""", re.I),
        r"\1" + MASK,
    ),
    # forms, env dumps, key=value text: password=value, TAGGER_PASSWORD=value,
    # refresh_token=...&; not a reference like $TOKEN
    (
        re.compile(rf"""((?<![A-Za-z0-9/.:-]){_KEYS}\s*=\s*['"]?)(?![$<])[^'"\s&,;}}]+""", re.I),
        r"\1" + MASK,
    ),
    # "password: hunter2" (YAML, logs): a quoted value, or one with a character that is
    # no letter; "token: echo" is prose
    (
        re.compile(rf"""((?<![A-Za-z0-9/.:-]){_KEYS}:\s+(['"]))(?![$<])(?:(?!\2).)+""", re.I),
        r"\1" + MASK,
    ),
    (
        re.compile(
            rf"""((?<![A-Za-z0-9/.:-]){_KEYS}:\s+)(?![$<'"])(?=[^\s'"]*[^A-Za-z\s'"])"""
            rf"""[^\s'"&,;}}]+""",
            re.I,
        ),
        r"\1" + MASK,
    ),
]


# C0 and C1 controls (CR, LF, ESC, ...), DEL, the line and paragraph separators, and the
# bidi controls (embeddings, overrides, isolates, marks) and BOM
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_UNSAFE_KEEP_LF = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_COMMAND_LINE = re.compile(r"^(\s*)::", re.M)


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: str, *, lines: bool = False) -> str:
    """``text`` safe to print on a terminal or a GitHub Actions log: every control
    character escaped (``\\n``, ``\\x1b``, ``\\u202e``). With ``lines``, line feeds are
    kept, and a line that would start with ``::`` (a workflow command) starts with
    ``\\`` instead."""
    if not text:
        return text
    if not lines:
        return _UNSAFE.sub(_escape, text)
    return _COMMAND_LINE.sub(r"\1\\::", _UNSAFE_KEEP_LF.sub(_escape, text))


def register(secret: str | None, username: str | None = None) -> None:
    """Remember a secret so that it never appears in output; with a username, also the
    base64 ``username:secret`` of a Basic header or a Docker config ``auth`` field."""
    global _pattern
    if not secret:
        return
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    if username is not None:
        raw = f"{username}:{secret}".encode()
        b64 = base64.b64encode(raw).decode()
        forms |= {b64, b64.rstrip("="), base64.urlsafe_b64encode(raw).decode()}
    forms = {f for f in forms if len(f) >= MIN_LENGTH}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial masks
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


SECRET_VARIABLES = ("TAGGER_PASSWORD",)


def secret_variables(env: Mapping[str, str]) -> list[str]:
    """Names of the variables in ``env`` a child process (git, a credential helper) must
    not inherit: TAGGER_PASSWORD and any whose value is a registered secret."""
    with _lock:
        known = set(_secrets)
    return [k for k, v in env.items() if k in SECRET_VARIABLES or (v and v in known)]


def redact(text: str) -> str:
    """``text`` with every registered secret and every secret-shaped value masked."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape, repl in _SHAPES:
        text = shape.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's final message (arguments merged) and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = printable(redact(message), lines=True)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = printable(redact(text), lines=True), None
        if record.stack_info:
            record.stack_info = printable(redact(record.stack_info), lines=True)
        return True


_HANDLER_MARK = "_tagger_handler"


def setup_logging(debug: bool) -> None:
    """Send log records to stderr through the redacting filter: every record with
    ``--debug`` (request lines, never headers; the libraries' warnings), else
    tagger's own warnings only."""
    import sys

    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(h)  # an earlier run in this process (tests) left one
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("debug: %(message)s" if debug else "%(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    if not debug:  # the libraries' own lines (urllib3's retries…) only with --debug
        handler.addFilter(_own_records)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING if debug else logging.CRITICAL)


NOISY = ("urllib3", "requests", "docker", "git")


def _own_records(record: logging.LogRecord) -> bool:
    """Without --debug, tagger's own warnings only: its errors say what a library's
    log line would (the retries ran out, the registry is unreachable)."""
    return record.name == "tagger" or record.name.startswith("tagger.")
