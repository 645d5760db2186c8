"""The ``xlayers`` command line (also ``python -m xlayers``).

- ``xlayers conformance``: the built-in conformance cases against Keras, with a report.
- ``xlayers demo``: the seed's three examples, compared with Keras.
- ``xlayers port IN OUT``: a Keras file to ``.keras``, ``.safetensors``, ``.weights.h5`` or
  ``.onnx``, verified on a random batch.
- ``xlayers bench``: xlayers' time against native torch, Keras on torch and Keras on TF.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xlayers", description="Keras layer semantics as PyTorch modules.")
    commands = parser.add_subparsers(dest="command", metavar="{conformance,demo,port,bench}")
    conformance = commands.add_parser(
        "conformance", help="compare every built-in case with Keras (TF backend) and write a report",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    from conformance.cli import add_arguments

    add_arguments(conformance)
    commands.add_parser("demo", help="run the seed's three examples with xlayers and compare each with Keras")
    from .port import add_arguments as add_port_arguments

    add_port_arguments(commands.add_parser("port", help="port a Keras model file to .keras, .safetensors, .weights.h5 or .onnx"))
    from .bench import add_arguments as add_bench_arguments

    add_bench_arguments(commands.add_parser(
        "bench", help="time xlayers against native torch, Keras on torch and Keras on TF (each in its own process)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    ))
    args = parser.parse_args(argv)
    if args.command is None:  # `xlayers` alone: the usage with the commands
        parser.print_help(sys.stderr)
        return 2
    if args.command == "conformance":
        from conformance.cli import run

        return run(args)
    if args.command == "port":
        from .port import run as run_port

        return run_port(args)
    if args.command == "bench":
        from .bench import run as run_bench

        return run_bench(args)
    from conformance.seed_demo import run as run_demo

    return 0 if run_demo() else 1


if __name__ == "__main__":
    sys.exit(main())
