"""The command line: parse, call, print. No logic lives here.

Human output goes to stderr, ``--json`` to stdout; every TaggerError becomes its exit
code here and only here, as one or two lines (a traceback only with ``--debug``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import github
from .errors import TaggerError
from .redact import redact, setup_logging

if TYPE_CHECKING:
    from .release import Result

F = TypeVar("F", bound=Callable[..., Any])


class Ctx:
    def __init__(self, path: str, debug: bool) -> None:
        self.path = path
        self.debug = debug


def _config(ctx: Ctx, /, **flags: Any) -> Any:
    from . import config

    start = Path(ctx.path)
    if not start.is_dir():
        from .errors import GitError

        raise GitError(f"{ctx.path}: no such directory", "pass -C with an existing path")
    root = _git_root(start)
    return config.load(start, root, os.environ, flags)


def _git_root(start: Path) -> Path | None:
    for d in [start.resolve(), *start.resolve().parents]:
        if (d / ".git").exists():
            return d
    return None


def common_options(f: F) -> F:
    options = [
        click.option("--tag-prefix", default=None, help="git tag prefix of versions [v]"),
        click.option("--sha-prefix", default=None, help="prefix of SHA tags [sha-]"),
        click.option("--sha-length", type=int, default=None, help="SHA characters in SHA tags [7]"),
        click.option("--allow-dirty", is_flag=True, help="publish a dirty tree as T-dirty"),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def registry_options(f: F) -> F:
    options = [
        click.option("--image", "-i", "images", multiple=True, help="target repository (repeat)"),
        click.option("--source", default=None, help="what to publish (docker://REF, …)"),
        click.option("--latest", default=None, help="highest | never | always | branch:NAME"),
        click.option("--major-zero/--no-major-zero", default=None, help="make a 0 tag"),
        click.option(
            "--require-revision/--no-require-revision",
            default=None,
            help="refuse a source without an org.opencontainers.image.revision label",
        ),
        click.option(
            "--insecure-registry", "insecure", multiple=True, help="allow plain HTTP to HOST[:PORT]"
        ),
        click.option("--json", "as_json", is_flag=True, help="machine-readable result on stdout"),
        click.option("--retries", type=int, default=None, help="retries per request [4]"),
        click.option("--timeout", type=float, default=None, help="seconds per request [30]"),
        click.option("--deadline", type=float, default=None, help="seconds for the run [600]"),
        click.option(
            "--username",
            "-u",
            default=None,
            help="login for the --image registries (with --password-stdin)",
        ),
        click.option(
            "--password-stdin", is_flag=True, help="read the password or token from stdin"
        ),
        click.option(
            "--password", hidden=True, expose_value=False, callback=_no_password_flag, is_eager=True
        ),
        click.option(
            "--ca-cert", default=None, metavar="FILE", help="CA bundle to verify TLS with"
        ),
    ]
    for opt in reversed(options):
        f = opt(f)
    return common_options(f)


def _no_password_flag(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:  # never echo it
        raise click.UsageError(
            "a password is never taken from a flag value: pipe it to --password-stdin"
            " (with --username), or set TAGGER_USERNAME / TAGGER_PASSWORD"
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "path", default=".", metavar="PATH", help="run as if started in PATH")
@click.option("--debug", is_flag=True, help="log requests and show tracebacks")
@click.version_option(package_name="oci-tagger", prog_name="tagger")
@click.pass_context
def cli(ctx: click.Context, path: str, debug: bool) -> None:
    """Publish container images under tags users can trust."""
    ctx.obj = Ctx(path, debug)
    setup_logging(debug)  # every record through the redacting filter


@cli.command()
@common_options
@click.pass_obj
def version(ctx: Ctx, /, **opts: Any) -> None:
    """Print the immutable tag T for HEAD."""
    from .release import read_identity

    allow_dirty = opts.pop("allow_dirty")
    cfg = _config(ctx, **opts)
    ident = read_identity(cfg, ctx.path, os.environ, allow_dirty=allow_dirty)
    click.echo(ident.tag)


def _flags(opts: dict[str, Any]) -> dict[str, Any]:
    return {
        "images": tuple(opts.pop("images", ())),
        "source": opts.pop("source", None),
        "latest": opts.pop("latest", None),
        "major_zero": opts.pop("major_zero", None),
        "require_revision": opts.pop("require_revision", None),
        "insecure_registries": tuple(opts.pop("insecure", ())) or None,
        "tag_prefix": opts.pop("tag_prefix", None),
        "sha_prefix": opts.pop("sha_prefix", None),
        "sha_length": opts.pop("sha_length", None),
        "retries": opts.pop("retries", None),
        "timeout": opts.pop("timeout", None),
        "deadline": opts.pop("deadline", None),
    }


def _run(
    ctx: Ctx, opts: dict[str, Any], action: Callable[[Any, Any, Any], Any], needs_git: bool = True
) -> None:
    from . import credentials, tls
    from .release import Registries, StopFlag, read_identity

    as_json = opts.pop("as_json")
    allow_dirty = opts.pop("allow_dirty", False)
    username, password_stdin = opts.pop("username", None), opts.pop("password_stdin", False)
    ca_cert = opts.pop("ca_cert", None)
    cfg = _config(ctx, **_flags(opts))
    login = credentials.resolver(
        cfg.images,
        username=username,
        password_stdin=password_stdin,
        stdin=sys.stdin,
        env=os.environ,
    )
    stop = StopFlag(cfg.deadline)
    stop.install()
    regs = Registries(
        cfg.insecure_registries,
        credentials=login,
        verify=tls.ca_bundle(ca_cert, os.environ),
        retries=cfg.retries,
        timeout=cfg.timeout,
        expired=stop.expired,
    )
    try:
        ident = (
            read_identity(cfg, ctx.path, os.environ, allow_dirty=allow_dirty) if needs_git else None
        )
        result = action(cfg, ident, (regs, stop))
    except TaggerError as e:
        partial = getattr(e, "result", None)
        if partial is not None:
            _print_result(partial, as_json)
            github.report(partial, os.environ)
        else:
            if as_json:
                click.echo(json.dumps({"error": str(e), "exit_code": e.exit_code}))
            github.report_error(e, os.environ)
        raise
    finally:
        stop.restore()
        regs.close()
    _print_result(result, as_json)
    github.report(result, os.environ)


@cli.command()
@registry_options
@click.option("--offline", is_flag=True, help="contact no registry")
@click.pass_obj
def plan(ctx: Ctx, /, offline: bool, **opts: Any) -> None:
    """Print what `release` would do; change nothing."""
    from . import release

    _run(
        ctx,
        opts,
        lambda cfg, ident, rs: release.plan(cfg, ident, rs[0], offline=offline).result,
    )


@cli.command("release")
@registry_options
@click.option("--dry-run", is_flag=True, help="plan only")
@click.option("--allow-pr", is_flag=True, help="publish from a GitHub pull request too")
@click.pass_obj
def release_cmd(ctx: Ctx, /, dry_run: bool, allow_pr: bool, **opts: Any) -> None:
    """Publish T, then the floating tags the policy moves."""
    from . import release

    _run(
        ctx,
        opts,
        lambda cfg, ident, rs: (
            github.held_release(cfg, ident, os.environ, allow_pr=allow_pr)
            or release.release(cfg, ident, rs[0], dry_run=dry_run, stop=rs[1])
        ),
    )


@cli.command()
@registry_options
@click.option("--dry-run", is_flag=True, help="show what would change")
@click.pass_obj
def reconcile(ctx: Ctx, /, dry_run: bool, **opts: Any) -> None:
    """Point every floating tag at the highest published version of its line."""
    from . import release

    opts.pop("allow_dirty", None)
    _run(
        ctx,
        opts,
        lambda cfg, ident, rs: release.reconcile(cfg, rs[0], dry_run=dry_run, stop=rs[1]),
        needs_git=False,
    )


def _print_result(result: Result, as_json: bool) -> None:
    from .reference import short_digest

    if as_json:
        click.echo(json.dumps(result.to_json(), indent=None))
    if result.command != "reconcile":
        what = f"version {result.version}" if result.version else "no release version (SHA build)"
        commit = (result.commit or "")[:12]
        line = f"{result.command}: {result.immutable_tag} ({what}, commit {commit})"
        if result.source:
            line += f"\nsource: {result.source}" + (f" ({result.digest})" if result.digest else "")
        click.echo(line, err=True)
    elif result.dry_run:
        click.echo("reconcile --dry-run: nothing written", err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for warning in result.warnings:
        if not github.annotate(warning, os.environ, level="warning"):
            click.echo(f"warning: {warning}", err=True)
    for image in result.images:
        click.echo(image.name, err=True)
        # a STATUS column only when a run stopped short: it shows where
        status = result.stopped_short
        rows = [("TAG", "ACTION", "FROM -> TO", "REASON") + (("STATUS",) if status else ())] + [
            (
                t.tag,
                t.action,
                f"{short_digest(t.from_digest)} -> {short_digest(t.to_digest)}",
                t.reason,
            )
            + ((t.status or "",) if status else ())
            for t in image.tags
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            cells = "  ".join(c.ljust(w) for c, w in zip(r, widths))
            click.echo(f"  {cells}  {r[-1]}", err=True)
    if result.dry_run and result.command == "release":
        click.echo("dry run: nothing written", err=True)


def main(argv: list[str] | None = None) -> int:
    """The entry point: the only place a TaggerError becomes an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="tagger", standalone_mode=False)
        return 0
    except click.exceptions.Abort:
        click.echo("tagger: stopped", err=True)
        return 130
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        e.show()
        github.annotate(e.format_message(), os.environ)
        return 2 if isinstance(e, click.UsageError) else int(e.exit_code)
    except TaggerError as e:
        _error(e, debug)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("tagger: stopped by SIGINT", err=True)
        return 130
    except Exception as e:  # noqa: BLE001 - the last resort: one line, exit 1
        if debug:
            import traceback

            click.echo(redact(traceback.format_exc()).rstrip(), err=True)
        text = redact(f"unexpected error: {type(e).__name__}: {e}")
        text += "\nrerun with --debug for a traceback, and report it"
        if not github.annotate(text, os.environ):
            click.echo(f"tagger: {text}", err=True)
        return 1


def run() -> NoReturn:
    """The console script and ``python -m tagger``: ``main``, then exit without the
    interpreter's teardown, which frees every module and object one by one (35 ms with
    requests loaded, a fifth of a release on a local registry) only for the process to
    end. Exit handlers run and the standard streams are flushed first; while another
    thread is still alive, the ordinary exit waits for it."""
    import atexit
    import threading

    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


def _error(e: TaggerError, debug: bool) -> None:
    if debug:
        import traceback

        click.echo(redact(traceback.format_exc()).rstrip(), err=True)
    if github.annotate(str(e), os.environ):  # in GitHub Actions: an annotation instead
        return
    click.echo(f"tagger: {e.message}", err=True)
    if e.hint:
        click.echo(f"  {e.hint}", err=True)
