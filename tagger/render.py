"""One renderer for a run's report: the text table (stderr), ``--json`` (stdout), the
GitHub step summary (Markdown) and the GitHub step outputs. Pure functions of the
report model; printing and files are the caller's business.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .redact import printable
from .reference import short_digest
from .release.report import Result, Status, TagResult


def json_text(result: Result, error: tuple[str, int] | None = None) -> str:
    """The result; a run that ended with an error also says it (``error``,
    ``exit_code``, as the error object does)."""
    doc = result.to_json()
    if error is not None:
        doc["error"], doc["exit_code"] = error
    return json.dumps(doc, indent=None)


def error_json(message: str, exit_code: int) -> str:
    doc: dict[str, Any] = {"error": message, "exit_code": exit_code}
    return json.dumps(doc)


def headline(result: Result) -> list[str]:
    """What the run is about: the command, T, V, the commit and the source."""
    if result.command == "reconcile":
        return ["reconcile --dry-run: nothing written"] if result.dry_run else []
    what = f"version {result.version}" if result.version else "no release version (SHA build)"
    commit = (result.commit or "")[:12]
    lines = [f"{result.command}: {result.immutable_tag} ({what}, commit {commit})"]
    if result.source:
        lines.append(f"source: {result.source}" + (f" ({result.digest})" if result.digest else ""))
    return lines


def table(result: Result) -> list[str]:
    """Per image its name and a table of tags; a STATUS column when a run stopped
    short (it shows where)."""
    lines: list[str] = []
    status = result.stopped_short
    for image in result.images:
        lines.append(image.name)
        rows = [("TAG", "ACTION", "FROM -> TO", "REASON") + (("STATUS",) if status else ())] + [
            (
                t.tag,
                t.action,
                f"{short_digest(t.from_digest)} -> {short_digest(t.to_digest)}",
                t.reason,
            )
            + ((t.status_text,) if status else ())
            for t in image.tags
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        rows = [tuple(printable(c) for c in r) for r in rows]  # a tag or reason from a registry
        for r in rows:
            cells = "  ".join(c.ljust(w) for c, w in zip(r, widths))
            lines.append(f"  {cells}  {r[-1]}")
    if result.dry_run and result.command == "release":
        lines.append("dry run: nothing written")
    return lines


# --- GitHub ------------------------------------------------------------------------
def points_at_image(result: Result, t: TagResult) -> bool:
    """Does the tag point at the image now: unchanged (it already did), or written
    to it by this run (a repair points elsewhere)."""
    if result.digest is None:
        return False
    if t.action == "unchanged":
        return t.from_digest == result.digest
    return t.writes and t.status is Status.DONE and t.to_digest == result.digest


def written_tags(result: Result) -> list[str]:
    """``image:tag`` of every tag that points at the image after the run (created or
    moved by it, or already there), one per image and tag, in write order: what is in
    the registry now. A dry run, a pull request or a refusal writes nothing, so only
    the tags already on the image."""
    return [
        f"{image.name}:{t.tag}"
        for image in result.images
        if image.ref is not None
        for t in image.tags
        if points_at_image(result, t)
    ]


def outputs(result: Result, error: tuple[str, int] | None = None) -> dict[str, str]:
    """The step outputs of a result (``version`` is empty for a SHA build); ``tags``
    and ``digest`` say what the registry holds now: the digest only when a target has
    it under a tag."""
    tags = written_tags(result)
    return {
        "version": str(result.version) if result.version else "",
        "tag": result.immutable_tag or "",
        "tags": "\n".join(tags),
        "digest": (result.digest or "") if tags else "",
        "json": json_text(result, error),
    }


_MARKUP = re.compile(r"[&<>`|\\\[\]*_~]")
_PLAIN = re.compile(r"[A-Za-z0-9._:/@+-]*")


def cell(text: str) -> str:
    """Text for a Markdown table cell or a quoted line, whatever a registry or a source
    put in it: control characters escaped (no new line, no table row of its own), and
    every character Markdown or HTML gives a meaning to (``& < > ` | \\ [ ] * _ ~``)
    written as a character reference, so it shows as itself."""
    return _MARKUP.sub(lambda m: f"&#{ord(m.group())};", printable(text))


def code(text: str) -> str:
    """``text`` as inline code: a code span when it holds only reference characters
    (an image name, a tag, a digest), else ``<code>`` with its content escaped (a code
    span cannot escape a backtick or show a character reference)."""
    return f"`{text}`" if _PLAIN.fullmatch(text) else f"<code>{cell(text)}</code>"


def _digest(d: str | None) -> str:
    return code(short_digest(d)) if d else "-"


def summary(result: Result, error: tuple[str, int] | None = None) -> str:
    """A Markdown report: what was published, and one table row per image and tag."""
    lines = []
    if result.command == "reconcile":
        lines.append("### tagger reconcile" + (" (dry run)" if result.dry_run else ""))
    else:
        what = f"version {result.version}" if result.version else "SHA build, no release version"
        dry = " (dry run: nothing written)" if result.dry_run else ""
        lines.append(f"### tagger {result.command}: {code(result.immutable_tag or '')}{dry}")
        lines.append("")
        facts = [cell(what), f"commit {code((result.commit or '')[:12])}"]
        if result.source:
            digest = f" ({_digest(result.digest)})" if result.digest else ""
            facts.append(f"source {code(result.source)}{digest}")
        lines.append(" · ".join(facts))
    for note in result.notes:
        lines += ["", f"> {cell(note)}"]
    for warning in result.warnings:
        lines += ["", f"> **warning:** {cell(warning)}"]
    lines += ["", "| image | tag | action | from → to | reason |", "|---|---|---|---|---|"]
    for image in result.images:
        for t in image.tags:
            status = f" ({t.status_text})" if t.status not in (None, Status.DONE) else ""
            lines.append(
                f"| {code(image.name)} | {code(t.tag)} | {cell(t.action + status)} | "
                f"{_digest(t.from_digest)} → {_digest(t.to_digest)} | {cell(t.reason)} |"
            )
    text = "\n".join(lines) + "\n\n"
    return text if error is None else text + error_summary(*error)  # the run ended so


# --- tagger labels ----------------------------------------------------------------
def labels_json(labels: dict[str, str]) -> str:
    return json.dumps(labels)


def labels_text(labels: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in labels.items())


def labels_outputs(labels: dict[str, str], version: str, tag: str, sha_tag: str) -> dict[str, str]:
    """The step outputs of ``tagger labels``: the labels one ``KEY=VALUE`` a line (as
    docker/build-push-action's ``labels`` input takes them), V, T and the SHA tag."""
    return {
        "labels": labels_text(labels),
        "version": version,
        "tag": tag,
        "sha-tag": sha_tag,
        "json": labels_json(labels),
    }


def labels_summary(labels: dict[str, str], tag: str) -> str:
    rows = [f"| `{cell(k)}` | `{cell(v)}` |" for k, v in labels.items()]
    head = [f"### tagger labels: `{cell(tag)}`", "", "| label | value |", "|---|---|"]
    return "\n".join([*head, *rows]) + "\n\n"


def error_summary(message: str, exit_code: int) -> str:
    text = "<br>".join(cell(line) for line in message.splitlines())  # message, hint
    return f"### tagger failed (exit code {exit_code})\n\n{text}\n\n"
