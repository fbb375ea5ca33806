"""gemma-mlx shield: ShieldGemma 2 image classification."""

from __future__ import annotations

import argparse


def add_shield_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="google/shieldgemma-2-4b-it",
                   help="a ShieldGemma 2 checkpoint (default: google/shieldgemma-2-4b-it)")
    p.add_argument("--image", action="append", required=True, metavar="PATH",
                   help="an image to classify (repeatable)")
    p.add_argument("--policy", action="append", metavar="NAME",
                   help="dangerous, sexual or violence (repeatable; default: all of them "
                   "and every --custom-policy)")
    p.add_argument("--custom-policy", action="append", default=[], metavar="NAME=TEXT",
                   help="a policy of your own, or another text for a known name (repeatable)")
    p.add_argument("--json", action="store_true", help="print {image: {policy: p}}")


def run_shield(args: argparse.Namespace) -> None:
    from ..generation.shield import shield_command

    print(shield_command(args.model, args.image, args.policy, args.custom_policy, args.json))
