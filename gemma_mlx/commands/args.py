"""argparse pieces that several subcommands share."""

from __future__ import annotations

import argparse


def force_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="run even when the memory preflight says it will not fit")


def bounded(kind: type, low: float, strict: bool = False):
    """An argparse type: `kind` values >= low (> low if strict)."""
    def parse(text: str):
        value = kind(text)
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"{text}: must be {'>' if strict else '>='} {low}")
        return value
    return parse


def int8_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--int8-activations", action="store_true",
                   help="CPU only: round activations to int8 before the 4- and 8-bit matmuls, "
                   "as llama.cpp does (1.15-1.45x faster decode measured here; outputs change)")
