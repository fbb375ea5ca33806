"""The LoRA training loop: progress, validation, atomic adapter checkpoints, exact resume;
data-parallel over mx.distributed ranks (rank 0 prints and writes)."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from ..distributed import broadcast, is_main, token_weighted_mean, waiting, world
from ..errors import GemmaError
from .data import Example, batches, collate
from .layers import adapter_weights, load_adapter_weights
from .loss import lm_loss, training_head

ADAPTERS = "adapters.safetensors"
STATE = "training_state.safetensors"


@dataclass
class TrainingArgs:
    iters: int = 100
    batch_size: int = 4
    learning_rate: float = 1e-5
    max_seq_length: int = 2048
    steps_per_report: int = 10
    steps_per_eval: int = 200
    val_batches: int = 25
    save_every: int = 100
    grad_checkpoint: bool = False
    seed: int = 0


def checkpoint_layers(model: nn.Module) -> None:
    """Recompute each decoder layer's activations in the backward pass (less memory)."""
    for layer in model.layers:
        cls = type(layer)

        def call(self, x, cache, blocks=(), _fn=cls.__call__):
            def inner(params, x):
                self.update(params)
                return _fn(self, x, cache, blocks)

            return mx.checkpoint(inner)(self.trainable_parameters(), x)

        layer.__class__ = type(f"Checkpointed{cls.__name__}", (cls,), {"__call__": call})


def evaluate(model: nn.Module, examples: list[Example], batch_size: int, max_seq_length: int,
             max_batches: int = -1, head=None, group: mx.distributed.Group | None = None) -> float:
    """Mean loss per target token over the examples (in order); with several ranks each
    takes every N-th batch and the sums are all-reduced."""
    head = head or training_head(model)
    group = group or world()
    total = count = 0.0
    t0 = time.perf_counter()
    for i, s in enumerate(range(0, len(examples), batch_size)):
        if 0 <= max_batches <= i:
            break
        if i % group.size() != group.rank():
            continue
        ids, mask = collate(examples[s : s + batch_size], max_seq_length)
        loss, n = lm_loss(model, mx.array(ids), mask, head)
        total += loss.item() * n
        count += n
    if group.size() > 1:
        with waiting("evaluating", group, extra=2 * (time.perf_counter() - t0)):
            total, count = mx.distributed.all_sum(mx.array([total, count]), group=group).tolist()
    return total / max(count, 1)


def _save(directory: Path, model: nn.Module, optimizer, step: int, config: dict) -> None:
    """Adapters, their config and the optimizer state, each file replaced atomically.

    The order makes a kill between two files harmless: the step's own copy and the optimizer
    state land before adapters.safetensors, so whenever that file and the state disagree the
    copy that matches the state is already complete (see _resume). Every safetensors file
    records its step.
    """
    directory.mkdir(parents=True, exist_ok=True)

    def write(name: str, fn) -> None:
        tmp = directory / f".tmp.{name}"  # keeps the suffix mx.save_safetensors wants
        fn(tmp)
        os.replace(tmp, directory / name)

    meta = {"step": str(step)}
    weights = adapter_weights(model)
    state = dict(tree_flatten(optimizer.state))
    write("adapter_config.json", lambda p: p.write_text(json.dumps(config, indent=2)))
    write(f"{step:07d}_{ADAPTERS}", lambda p: mx.save_safetensors(str(p), weights, metadata=meta))
    write(STATE, lambda p: mx.save_safetensors(str(p), state, metadata=meta))
    write(ADAPTERS, lambda p: mx.save_safetensors(str(p), weights, metadata=meta))


def _resume(path: Path, model: nn.Module, optimizer) -> int:
    """Load adapters (and, when saved beside them, the optimizer state); the next step.

    Adapters and optimizer state must come from the same step. A run killed inside _save can
    leave adapters.safetensors one save behind the state; then the state's step copy, which
    _save writes first, is the consistent pair to resume from.
    """
    if not path.is_file():
        raise GemmaError(f"{path}: no such adapter file")
    weights, meta = mx.load(str(path), return_metadata=True)
    state_file = path.with_name(STATE)
    if not state_file.is_file():
        load_adapter_weights(model, weights, str(path))
        return 0
    state, state_meta = mx.load(str(state_file), return_metadata=True)
    step = int(state_meta["step"])
    # Adapters from mlx-lm or from before steps were recorded carry none: trusted as before.
    if "step" in meta and int(meta["step"]) != step:
        copy = path.with_name(f"{step:07d}_{ADAPTERS}")
        if path.name != ADAPTERS or not copy.is_file():
            raise GemmaError(f"{path}: adapters from step {meta['step']}, but {state_file} is "
                             f"from step {step}; resume from {copy.name}, or delete "
                             f"{state_file.name} to start the optimizer afresh")
        print(f"gemma-mlx: {path} is from step {meta['step']} (an interrupted save); resuming "
              f"from {copy.name}, which matches the optimizer state", file=sys.stderr)
        path, weights = copy, mx.load(str(copy))
    load_adapter_weights(model, weights, str(path))
    optimizer.state = tree_unflatten(list(state.items()))
    return step


def _start(model: nn.Module, optimizer, resume: str | Path | None,
           group: mx.distributed.Group) -> int:
    """Resume (rank 0 reads the files) and give every rank rank 0's adapters, optimizer state
    and step, so ranks start identical even when only rank 0 has the files."""
    start = _resume(Path(resume), model, optimizer) if resume and is_main(group) else 0
    if group.size() == 1:
        return start
    optimizer.init(model.trainable_parameters())  # the same tree on every rank
    params = dict(tree_flatten(model.trainable_parameters()))
    state = dict(tree_flatten(optimizer.state))
    with waiting("sharing the starting adapters", group):
        got = broadcast({**{f"p.{k}": v for k, v in params.items()},
                         **{f"s.{k}": v for k, v in state.items()},
                         "start": mx.array([start], mx.int64)}, group)
        mx.eval(got)
    model.update(tree_unflatten([(k[2:], v) for k, v in got.items() if k[:2] == "p."]))
    optimizer.state = tree_unflatten([(k[2:], v) for k, v in got.items() if k[:2] == "s."])
    return int(got["start"].item())


def _update(model: nn.Module, optimizer, loss_and_grad, ids: np.ndarray, mask: np.ndarray,
            group: mx.distributed.Group, step: int) -> tuple[float, int]:
    """One optimizer step on this rank's rows; the loss and target tokens of the whole batch."""
    t0 = time.perf_counter()
    loss, grads = loss_and_grad(model, mx.array(ids), mask)
    tokens = int(mask.sum())
    if group.size() > 1:
        mx.eval(loss, grads)  # the local work first, so the guarded wait is only the peers'
        with waiting(f"all-reducing the gradients of step {step}", group,
                     extra=2 * (time.perf_counter() - t0)):
            grads, loss, total = token_weighted_mean(grads, loss, tokens, group)
            mx.eval(grads, loss, total)
        tokens = int(total.item())
    optimizer.update(model, grads)
    mx.eval(loss, model.trainable_parameters(), optimizer.state)
    return loss.item(), tokens


def train(model: nn.Module, data: dict[str, list[Example]], args: TrainingArgs,
          adapter_dir: str | Path, adapter_config: dict,
          resume_adapter_file: str | Path | None = None,
          group: mx.distributed.Group | None = None) -> list[float]:
    """Train the adapters; returns the training loss of each step (of the whole batch: with
    several ranks, each takes its share of every batch and gradients are all-reduced)."""
    from tqdm import tqdm

    group = group or world()
    main = is_main(group)
    adapter_dir = Path(adapter_dir)
    optimizer = optim.Adam(learning_rate=args.learning_rate)
    config = {**adapter_config, "training": asdict(args)}
    start = _start(model, optimizer, resume_adapter_file, group)
    if start >= args.iters and main:  # nothing left to train (its last save was cut): save it
        _save(adapter_dir, model, optimizer, start, config)
    if args.grad_checkpoint:
        checkpoint_layers(model)

    head = training_head(model)

    def loss_fn(model, ids, mask):
        return lm_loss(model, ids, mask, head)[0]

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    if args.batch_size % group.size():
        raise GemmaError(f"batch size {args.batch_size} is not divisible by the "
                         f"{group.size()} ranks")
    stream = batches(data["train"], args.batch_size, args.max_seq_length, args.seed, start,
                     group.rank(), group.size())
    losses, tokens, t0 = [], 0, time.perf_counter()
    bar = tqdm(range(start + 1, args.iters + 1), desc="Training", unit="step",
               initial=start, total=args.iters, disable=not main)
    for step in bar:
        ids, mask = next(stream)
        # dropout: the same on a resumed run, different on each rank
        mx.random.seed(args.seed * 1_000_003 + step + 7919 * group.rank())
        loss, n = _update(model, optimizer, loss_and_grad, ids, mask, group, step)
        losses.append(loss)
        tokens += n
        bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{args.learning_rate:.1e}",
                        tok_s=f"{tokens / (time.perf_counter() - t0):.0f}",
                        peak_gb=f"{mx.get_peak_memory() / 1e9:.2f}")
        if "valid" in data and (step % args.steps_per_eval == 0 or step == args.iters):
            val = evaluate(model, data["valid"], args.batch_size, args.max_seq_length,
                           args.val_batches, head, group)
            if main:
                bar.write(f"step {step}: train loss {losses[-1]:.3f}, valid loss {val:.3f}")
        if main and (step % args.save_every == 0 or step == args.iters):
            _save(adapter_dir, model, optimizer, step, config)
    return losses
