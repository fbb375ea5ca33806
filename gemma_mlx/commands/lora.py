"""gemma-mlx lora and fuse: fine-tuning with mlx-lm's flags, and folding adapters in."""

from __future__ import annotations

import argparse

from .args import force_arg


def add_lora_args(p: argparse.ArgumentParser) -> None:
    """mlx-lm's flags; unset ones come from -c config.yaml, then the defaults."""
    p.add_argument("--model")
    p.add_argument("--train", action="store_true", default=None)
    p.add_argument("--test", action="store_true", default=None)
    p.add_argument("--data", help="directory with train/valid/test.jsonl")
    for flag, kind in [("--iters", int), ("--batch-size", int), ("--learning-rate", float),
                       ("--num-layers", int), ("--lora-rank", int), ("--lora-scale", float),
                       ("--lora-dropout", float), ("--max-seq-length", int),
                       ("--steps-per-report", int), ("--steps-per-eval", int),
                       ("--val-batches", int), ("--save-every", int), ("--seed", int),
                       ("--test-batches", int)]:
        p.add_argument(flag, type=kind)
    p.add_argument("--target-modules", nargs="+",
                   help="modules of each layer to adapt (default: all seven projections)")
    p.add_argument("--mask-prompt", action=argparse.BooleanOptionalAction, default=None,
                   help="loss on model turns / completions only (default: on)")
    p.add_argument("--grad-checkpoint", action="store_true", default=None)
    p.add_argument("--resume-adapter-file")
    p.add_argument("--adapter-path", help="where adapters are saved (default: adapters)")
    p.add_argument("-c", "--config", help="YAML file with any of these options")
    force_arg(p)


def run_lora(args: argparse.Namespace) -> None:
    from ..formats.default_model import ensure_default_model
    from ..formats.loading import resolve
    from ..formats.memory import preflight_command
    from ..lora.run import merge_config, run_lora

    options = merge_config(vars(args), args.config)
    path = resolve(options["model"]) if options["model"] else ensure_default_model()
    preflight_command("lora", path, {**options, "force": args.force})
    run_lora(options)


def add_fuse_args(f: argparse.ArgumentParser) -> None:
    f.add_argument("--model", help="base model (default: the embedded 270M)")
    f.add_argument("--adapter-path", default="adapters")
    f.add_argument("--save-path", required=True)
    f.add_argument("--dequantize", action="store_true", help="write float weights")
    f.add_argument("--force", action="store_true")


def run_fuse(args: argparse.Namespace) -> None:
    from ..formats.default_model import ensure_default_model
    from ..lora.run import fuse

    out = fuse(args.model or ensure_default_model(), args.adapter_path, args.save_path,
               dequantize=args.dequantize, force=args.force)
    print(f"Wrote {out}")
