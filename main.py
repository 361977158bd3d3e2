"""Niveshi's entry point: `python main.py {fit,validate,test,predict} --config configs/<x>.yaml`.

User errors (bad config key, missing or malformed data, a run stopped on NaN) print one line
and exit non-zero; set NIVESHI_DEBUG=1 to see the traceback. Bugs keep their traceback.
"""

from __future__ import annotations

import os
import sys

from jsonargparse import ArgumentError

from modules.cli import NiveshiCLI, discard_unused_run
from modules.errors import NiveshiError


def main(args: list[str] | None = None) -> NiveshiCLI:
    """Run the CLI; raises `NiveshiError`/`ArgumentError` for user errors (see `cli_main`)."""
    return NiveshiCLI(args=args)


def user_error(error: BaseException) -> NiveshiError | ArgumentError | None:
    """The user error behind `error`, if any (jsonargparse wraps errors raised in __init__)."""
    while error is not None:
        if isinstance(error, (NiveshiError, ArgumentError)):
            return error
        error = error.__cause__ or error.__context__
    return None


def cli_main() -> int:
    try:
        main()
    except Exception as error:
        found = user_error(error)
        if found is None or os.environ.get("NIVESHI_DEBUG"):
            raise
        discard_unused_run()
        print(f"error: {' '.join(str(found).split())}", file=sys.stderr)
        return getattr(found, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
