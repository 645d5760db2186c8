"""The ``xlayers`` command line: ``xlayers demo`` (``python -m xlayers demo``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xlayers", description="Keras layer semantics as PyTorch modules.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the seed's three examples with xlayers and compare each with Keras")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from conformance.seed_demo import run

        return 0 if run() else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
