"""Start or stop a throwaway PostgreSQL server for rlnas (tests, benchmarks, trying a shared study).

    python scripts/postgres_server.py start DIR     # prints postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
    python scripts/postgres_server.py url DIR       # prints the URL of the server running in DIR
    python scripts/postgres_server.py stop DIR      # stops it and deletes DIR/data (its log included)

The cluster and its log live in ``DIR/data``; nothing else in DIR is touched. The server
listens only on 127.0.0.1 with ``trust`` authentication: one machine, throwaway data only.
Under root it runs as the ``postgres`` user, which must be able to reach DIR (a folder made
with ``mkdir`` under /tmp works). Exit code 3 means a server cannot be started here (the
message says why: binaries, driver, user).
"""
from __future__ import annotations

import argparse
import sys

from rlnas.testing.postgres import PostgresServer, PostgresUnavailable

EXIT_UNAVAILABLE = 3


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="create the cluster if needed, start it, print its URL")
    start.add_argument("folder")
    start.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    start.add_argument("--durable", action="store_true", help="keep fsync and synchronous commit on")
    url = commands.add_parser("url", help="print the URL of the running server")
    url.add_argument("folder")
    stop = commands.add_parser("stop", help="stop the server and delete its data")
    stop.add_argument("folder")
    stop.add_argument("--keep", action="store_true", help="keep DIR/data for a later start")
    args = parser.parse_args(argv)
    try:
        server = PostgresServer(args.folder, port=getattr(args, "port", None), durable=getattr(args, "durable", False))
        if args.command == "start":
            print(server.running_url() if server.running() else server.start())
        elif args.command == "url":
            print(server.running_url())
        else:
            server.stop(remove=not args.keep)
    except PostgresUnavailable as exc:
        print(f"postgres_server: cannot {args.command}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
