"""The LoRA training loop: progress, validation, atomic adapter checkpoints, exact resume."""

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
from mlx.utils import tree_flatten, tree_unflatten

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
             max_batches: int = -1, head=None) -> float:
    """Mean loss per target token over the examples (in order)."""
    head = head or training_head(model)
    total = count = 0.0
    for i, s in enumerate(range(0, len(examples), batch_size)):
        if 0 <= max_batches <= i:
            break
        ids, mask = collate(examples[s : s + batch_size], max_seq_length)
        loss, n = lm_loss(model, mx.array(ids), mask, head)
        total += loss.item() * n
        count += n
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


def train(model: nn.Module, data: dict[str, list[Example]], args: TrainingArgs,
          adapter_dir: str | Path, adapter_config: dict,
          resume_adapter_file: str | Path | None = None) -> list[float]:
    """Train the adapters; returns the training loss of each step."""
    from tqdm import tqdm

    adapter_dir = Path(adapter_dir)
    optimizer = optim.Adam(learning_rate=args.learning_rate)
    config = {**adapter_config, "training": asdict(args)}
    start = _resume(Path(resume_adapter_file), model, optimizer) if resume_adapter_file else 0
    if start >= args.iters:  # nothing left to train (its last save was cut): save it whole
        _save(adapter_dir, model, optimizer, start, config)
    if args.grad_checkpoint:
        checkpoint_layers(model)

    head = training_head(model)

    def loss_fn(model, ids, mask):
        return lm_loss(model, ids, mask, head)[0]

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    stream = batches(data["train"], args.batch_size, args.max_seq_length, args.seed, start)
    losses, tokens, t0 = [], 0, time.perf_counter()
    bar = tqdm(range(start + 1, args.iters + 1), desc="Training", unit="step",
               initial=start, total=args.iters)
    for step in bar:
        ids, mask = next(stream)
        mx.random.seed(args.seed * 1_000_003 + step)  # dropout: the same on a resumed run
        loss, grads = loss_and_grad(model, mx.array(ids), mask)
        optimizer.update(model, grads)
        mx.eval(loss, model.trainable_parameters(), optimizer.state)
        losses.append(loss.item())
        tokens += int(mask.sum())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{args.learning_rate:.1e}",
                        tok_s=f"{tokens / (time.perf_counter() - t0):.0f}",
                        peak_gb=f"{mx.get_peak_memory() / 1e9:.2f}")
        if "valid" in data and (step % args.steps_per_eval == 0 or step == args.iters):
            val = evaluate(model, data["valid"], args.batch_size, args.max_seq_length,
                           args.val_batches, head)
            bar.write(f"step {step}: train loss {losses[-1]:.3f}, valid loss {val:.3f}")
        if step % args.save_every == 0 or step == args.iters:
            _save(adapter_dir, model, optimizer, step, config)
    return losses
