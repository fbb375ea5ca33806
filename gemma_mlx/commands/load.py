"""The model a generating subcommand runs: resolved, preflighted, loaded (or pipelined)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import GemmaError


def load_model(args: argparse.Namespace):
    """`--model` (default: the embedded 270M) and its tokenizer; sets args.model_path."""
    from ..formats.default_model import ensure_default_model, ensure_vision_demo_model
    from ..formats.loading import load, resolve
    from ..formats.memory import preflight_command

    if args.model == "vision-demo":
        path = ensure_vision_demo_model()
    else:
        path = resolve(args.model) if args.model else ensure_default_model()
    if args.command in ("generate", "chat") and (pipe := _pipeline(args, path)) is not None:
        model, tokenizer = pipe
    else:
        preflight_command(args.command, path, vars(args))  # before loading: refuse what won't fit
        model, tokenizer = load(path, progress=True, adapter_path=args.adapter_path)
    if tokenizer is None:
        raise GemmaError(f"{path}: has no tokenizer (tokenizer.model or tokenizer.json)")
    args.model_path = path
    return model, tokenizer


def _pipeline(args: argparse.Namespace, path: Path):
    """Under mlx.launch (more than one rank): this rank's pipeline stage and the tokenizer;
    rank 0 alone prints. None on one rank."""
    import os

    from ..distributed import world

    group = world()  # first: a launched rank waits here for the others, not after loading
    if group.size() == 1:
        return None
    from ..generation.pipeline import check_pipeline_options, load_pipeline

    check_pipeline_options(vars(args))
    loaded = load_pipeline(path, group)
    if group.rank() != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the rest of the process)
    return loaded
