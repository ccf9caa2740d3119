"""`rsmi` entry point. Each sub-command is a module of this package with ``register(sub)``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rsmi.errors import RSMIError

# Sub-command modules, in the order of `rsmi --help`.
COMMANDS = ("pipeline", "data", "train", "evaluate", "predict", "attack", "report", "resources", "serve")


class CLIError(RSMIError):
    """A user error: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsmi",
        description="RSMI: robust transformer text classifiers (train, predict, certify, attack).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (also: RSMI_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rsmi.cli.{name}").register(sub)
    return parser


def _debug(args: argparse.Namespace) -> bool:
    import os

    flag = os.environ.get("RSMI_DEBUG", "").strip().lower()
    return bool(getattr(args, "debug", False)) or flag not in ("", "0", "false", "no", "off")


def _expected(exc: BaseException) -> bool:
    """A failure the user can fix (bad input, file, setting): one line, exit 2."""
    return isinstance(exc, (RSMIError, ValueError, OSError))


def error_message(exc: BaseException) -> str:
    """One line saying what was wrong (and, where the message does not, what to do)."""
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}:{where} — check the path and its permissions, or choose another"
    elif isinstance(exc, FileNotFoundError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename} — check the path"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, UnicodeError) and "UTF-8" not in text:
        text = f"{text} — the input is not UTF-8 text; re-save it as UTF-8"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.WARNING
        if args.verbose == 0
        else logging.INFO
        if args.verbose == 1
        else logging.DEBUG
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose == 0:
        import os

        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"rsmi {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure ends in one line (or --debug)
        if _debug(args):
            raise
        if _expected(exc):
            print(f"rsmi {args.command}: error: {error_message(exc)}", file=sys.stderr)
            return exc.exit_code if isinstance(exc, RSMIError) else 2
        print(
            f"rsmi {args.command}: error: unexpected {type(exc).__name__}: {error_message(exc)} "
            "— this is a bug in rsmi: rerun with --debug for the traceback and report it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
