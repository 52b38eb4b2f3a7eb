"""The entry point of the ``tagger`` command and of ``python -m tagger``.

Kept apart from cli.py so that a Ctrl-C arriving while the CLI's modules are imported
(tens of milliseconds, before tagger's own handlers exist) ends as every other stop
does, 130 and one line (one ``--json`` object), not with Python's traceback. Nothing
has been read or written by then."""

from __future__ import annotations

import sys


def run() -> None:
    try:
        from .cli import run as run_cli
    except KeyboardInterrupt:
        if "--json" in sys.argv[1:]:
            print('{"error": "stopped by SIGINT", "exit_code": 130}', flush=True)
        print("tagger: stopped by SIGINT", file=sys.stderr, flush=True)
        sys.exit(130)
    run_cli()


if __name__ == "__main__":
    run()
