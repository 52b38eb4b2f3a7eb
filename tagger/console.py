"""What a run prints and leaves behind, in one place: ``--json`` on stdout, human text
on stderr, and inside GitHub Actions the step outputs, the summary and annotations
(render.py says what, github.py writes the files). One ``Console`` per run: it makes
sure the run's one report (the ``--json`` object, the ``json`` output) goes out once,
whatever ends the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import click

from . import github
from .errors import TaggerError
from .redact import printable, redact

if TYPE_CHECKING:
    from .release.report import Result


class Console:
    def __init__(self, *, as_json: bool, debug: bool, env: Mapping[str, str] | None = None) -> None:
        self.as_json = as_json
        self.debug = debug
        self.env = os.environ if env is None else env
        self.reported = False  # the run's one report is out

    def warn(self, warnings: Iterable[str]) -> None:
        """Warnings on stderr (in GitHub Actions: as annotations), never on stdout."""
        for warning in warnings:
            if not github.annotate(warning, self.env, level="warning"):
                click.echo(f"warning: {printable(warning)}", err=True)

    def note(self, text: str) -> None:
        click.echo(f"note: {printable(text)}", err=True)

    def result(self, result: Result, error: TaggerError | None = None) -> None:
        """The report: ``--json`` on stdout, the rest on stderr; in GitHub Actions also
        the step outputs and summary, and warnings as annotations."""
        from . import render

        self.reported = True
        err = None if error is None else (str(error), error.exit_code)
        if self.as_json:
            click.echo(render.json_text(result, err))
        for line in render.headline(result):
            click.echo(printable(line), err=True)
        for note in result.notes:
            self.note(note)
        self.warn(result.warnings)
        for line in render.table(result):  # every cell already printable
            click.echo(line, err=True)
        github.write_outputs(render.outputs(result, err), self.env)
        github.write_summary(render.summary(result, err), self.env)

    def failure(self, message: str, exit_code: int) -> None:
        """No plan to show: ``--json`` and the ``json`` output are the error object
        (once: a run that reported its result already said it all)."""
        from . import render

        if self.reported:
            return
        self.reported = True
        doc = render.error_json(message, exit_code)
        if self.as_json:
            click.echo(doc)
        github.write_outputs({"json": doc}, self.env)
        github.write_summary(render.error_summary(message, exit_code), self.env)

    def error(self, e: TaggerError) -> None:
        """tagger's error: one or two lines (an annotation in GitHub Actions)."""
        self.traceback()
        if not github.annotate(str(e), self.env):
            click.echo(f"tagger: {e.message}", err=True)
            if e.hint:
                click.echo(f"  {e.hint}", err=True)
        self.failure(str(e), e.exit_code)

    def usage(self, e: click.ClickException, exit_code: int) -> None:
        e.show()
        github.annotate(e.format_message(), self.env)
        self.failure(redact(e.format_message()), exit_code)

    def unexpected(self, e: BaseException) -> None:
        """The last resort: one line, and where to go from there."""
        self.traceback()
        text = printable(redact(f"unexpected error: {type(e).__name__}: {e}"))
        self.failure(text, 1)
        text += "\nrerun with --debug for a traceback, and report it"
        if not github.annotate(text, self.env):
            click.echo(f"tagger: {text}", err=True)

    def traceback(self) -> None:
        if self.debug:
            import traceback

            click.echo(printable(redact(traceback.format_exc()), lines=True).rstrip(), err=True)
