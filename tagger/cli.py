"""The command line: parse, call, map exit codes. No logic lives here.

Every TaggerError becomes its exit code here and only here; what is printed (human
text on stderr, ``--json`` on stdout, GitHub outputs) is console.py's business.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from . import github
from .console import Console
from .errors import TaggerError
from .redact import setup_logging

F = TypeVar("F", bound=Callable[..., Any])


class Ctx:
    def __init__(self, path: str, debug: bool, out: Console) -> None:
        self.path = path
        self.debug = debug
        self.out = out


def _config(ctx: Ctx, /, **flags: Any) -> Any:
    from . import config

    return config.load_at(ctx.path, os.environ, flags)


def _set_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    obj = ctx.find_object(Ctx)
    if obj is not None and param.name == "path" and value is not None:
        obj.path = value
    elif obj is not None and param.name == "debug" and value:
        obj.debug = obj.out.debug = True
        setup_logging(True)


def global_options(f: F) -> F:
    """``-C`` and ``--debug`` after the command too (``tagger release -C path --debug``)."""
    opts: dict[str, Any] = {"expose_value": False, "callback": _set_global}
    f = click.option("--debug", is_flag=True, help="as tagger --debug", **opts)(f)
    return click.option("-C", "path", metavar="PATH", help="as tagger -C PATH", **opts)(f)


def common_options(f: F) -> F:
    """What naming T takes: every command that reads git."""
    options = [
        click.option("--tag-prefix", default=None, help="git tag prefix of versions [v]"),
        click.option("--sha-prefix", default=None, help="prefix of SHA tags [sha-]"),
        click.option("--sha-length", type=int, default=None, help="SHA characters in SHA tags [7]"),
        click.option("--allow-dirty", is_flag=True, help="publish a dirty tree as T-dirty"),
    ]
    for opt in reversed(options):
        f = opt(f)
    return global_options(f)


def target_options(f: F) -> F:
    """What reaching and judging the target repositories takes: every registry command."""
    options = [
        click.option("--image", "-i", "images", multiple=True, help="target repository (repeat)"),
        click.option("--latest", default=None, help="highest | never | always | branch:NAME"),
        click.option("--major-zero/--no-major-zero", default=None, help="make a 0 tag"),
        click.option(
            "--insecure-registry", "insecure", multiple=True, help="HTTPS unverified, or plain HTTP"
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
    return f


def registry_options(f: F) -> F:
    """plan and release: the targets, the source, and naming T."""
    options = [
        click.option("--source", default=None, help="what to publish (docker://REF, …)"),
        click.option(
            "--require-revision/--no-require-revision",
            default=None,
            help="refuse a source without an org.opencontainers.image.revision label",
        ),
    ]
    for opt in reversed(options):
        f = opt(f)
    return common_options(target_options(f))


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
    out = ctx.obj if isinstance(ctx.obj, Console) else Console(as_json=False, debug=debug)
    ctx.obj = Ctx(path, debug, out)
    setup_logging(debug)  # every record through the redacting filter


@cli.command()
@common_options
@click.option(
    "--sha", is_flag=True, help="print HEAD's SHA tag (sha-1a2b3c4), where CI pushes every build"
)
@click.pass_obj
def version(ctx: Ctx, /, sha: bool, **opts: Any) -> None:
    """Print the immutable tag T for HEAD."""
    from .identity import read_identity

    allow_dirty = opts.pop("allow_dirty")
    cfg = _config(ctx, **opts)
    ident = read_identity(cfg, ctx.path, os.environ, allow_dirty=allow_dirty)
    if sha:  # a dirty build must not take the clean commit's name
        click.echo(ident.sha_tag + ("-dirty" if ident.state.dirty else ""))
    else:
        ctx.out.warn(ident.warnings)
        click.echo(ident.tag)


@cli.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="the labels as one JSON object on stdout")
@click.pass_obj
def labels(ctx: Ctx, /, as_json: bool, **opts: Any) -> None:
    """Print the OCI labels a build of HEAD should carry, one KEY=VALUE a line."""
    from . import render
    from .identity import build_labels, read_identity

    allow_dirty = opts.pop("allow_dirty")
    cfg = _config(ctx, **opts)  # an error: main reports it (--json, outputs, summary)
    ident = read_identity(cfg, ctx.path, os.environ, allow_dirty=allow_dirty)
    found = build_labels(ident, ctx.path, os.environ)
    for hint in ident.state.hints:
        ctx.out.note(f"used CI hint: {hint}")
    click.echo(render.labels_json(found) if as_json else render.labels_text(found))
    version = str(ident.version) if ident.version is not None else ""
    sha_tag = ident.sha_tag + ("-dirty" if ident.state.dirty else "")
    github.write_outputs(render.labels_outputs(found, version, ident.tag, sha_tag), os.environ)
    github.write_summary(render.labels_summary(found, ident.tag), os.environ)


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
    ctx: Ctx, opts: dict[str, Any], action: Callable[..., Any], git: bool = True, **ahead: Any
) -> None:
    from .identity import read_identity
    from .release.session import session

    ctx.out.as_json = opts.pop("as_json")
    allow_dirty = opts.pop("allow_dirty", False)
    username, password_stdin = opts.pop("username", None), opts.pop("password_stdin", False)
    ca_cert = opts.pop("ca_cert", None)
    cfg = _config(ctx, **_flags(opts))
    with session(
        cfg,
        username=username,
        password_stdin=password_stdin,
        ca_cert=ca_cert,
        stdin=sys.stdin,
        env=os.environ,
        pull_request=github.pull_request(os.environ),
        **ahead,  # the reads sent before git is read (session.py)
    ) as (regs, stop, pre):
        try:
            ident = (
                read_identity(cfg, ctx.path, os.environ, allow_dirty=allow_dirty) if git else None
            )
            ctx.out.warn(ident.warnings if ident else ())
            result = action(cfg, ident, (regs, stop, pre))
        except TaggerError as e:
            err = stop.outcome(e)  # a signal came: the run was stopped, whatever surfaced
            if err.result is not None:
                ctx.out.result(err.result, err)
            if err is e:
                raise
            raise err from e
    ctx.out.result(result)


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
        lambda cfg, ident, rs: release.gate(cfg, ident, rs[0], offline=offline, prefetch=rs[2]),
        ping=not offline,
    )


@cli.command("release")
@registry_options
@click.option("--dry-run", is_flag=True, help="plan only")
@click.option("--allow-pr", is_flag=True, help="publish from a GitHub pull request too")
@click.pass_obj
def release_cmd(ctx: Ctx, /, dry_run: bool, allow_pr: bool, **opts: Any) -> None:
    """Publish T, then the floating tags the policy moves."""
    from . import release

    pr = None if allow_pr else github.pull_request(os.environ)
    held = f"{pr}: nothing pushed (pass --allow-pr to publish from a pull request)"
    _run(
        ctx,
        opts,
        lambda cfg, ident, rs: (
            release.hold(cfg, ident, held)
            if pr
            else release.release(cfg, ident, rs[0], dry_run=dry_run, stop=rs[1], prefetch=rs[2])
        ),
        read_ahead=None if pr else not dry_run,
    )


@cli.command()
@target_options
@global_options
@click.option("--dry-run", is_flag=True, help="show what would change")
@click.pass_obj
def reconcile(ctx: Ctx, /, dry_run: bool, **opts: Any) -> None:
    """Point every floating tag at the highest published version of its line."""
    from . import release

    _run(
        ctx,
        opts,
        lambda cfg, ident, rs: release.reconcile(cfg, rs[0], dry_run=dry_run, stop=rs[1]),
        git=False,
    )


def main(argv: list[str] | None = None) -> int:
    """The entry point: the only place a TaggerError becomes an exit code."""
    args = sys.argv[1:] if argv is None else argv
    out = Console(as_json="--json" in args, debug="--debug" in args)
    try:
        cli.main(args=args, prog_name="tagger", standalone_mode=False, obj=out)
        return 0
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("tagger: stopped by SIGINT", err=True)
        out.failure("stopped by SIGINT", 130)
        return 130
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        code = 2 if isinstance(e, click.UsageError) else int(e.exit_code)
        out.usage(e, code)
        return code
    except TaggerError as e:
        out.error(e)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the last resort: one line, exit 1
        out.unexpected(e)
        return 1


def run() -> NoReturn:
    """The console script and ``python -m tagger``: ``main``, then exit without the
    interpreter's teardown, which frees every module and object one by one (35 ms with
    requests loaded, a fifth of a release on a local registry) only for the process to
    end. Logging is shut down and the standard streams are flushed first (tagger and
    the libraries it uses register no other exit handler). While another thread is
    still alive, the ordinary exit runs instead."""
    import logging
    import threading

    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)
