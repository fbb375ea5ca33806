"""One rank of a data-parallel LoRA run on a fixture, for tests/test_distributed.py.

    distributed_worker.py OUT_DIR [--die-at STEP]

Trains the tiny fixture (tests/test_lora.py's model and data); rank 0 writes OUT_DIR/run.npz
with the losses and the final adapters. --die-at STEP: rank 1 SIGKILLs itself at that step.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import gemma_mlx  # noqa: F401  (first: binds MLX to OpenBLAS)

# isort: split
import mlx.core as mx
import numpy as np

from gemma_mlx.distributed import is_main, world
from gemma_mlx.errors import GemmaError
from gemma_mlx.lora import trainer
from gemma_mlx.lora.layers import adapter_weights

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.test_lora import _data, _model  # noqa: E402

ARGS = dict(iters=4, batch_size=4, learning_rate=1e-3, save_every=4, steps_per_eval=2)


def run(out: Path, group=None) -> tuple[list[float], dict[str, np.ndarray]]:
    """The run every rank makes (and the test makes on one rank): losses, final adapters."""
    mx.random.seed(0)
    model = _model(rank=4)
    data = _data(12)
    losses = trainer.train(model, {"train": data, "valid": data[:6]},
                           trainer.TrainingArgs(**ARGS), out, {"num_layers": 3}, group=group)
    return losses, {k: np.array(v) for k, v in adapter_weights(model).items()}


def main() -> None:
    out = Path(sys.argv[1])
    if "--die-at" in sys.argv:
        die_at, real = int(sys.argv[sys.argv.index("--die-at") + 1]), trainer._update

        def update(*a):
            if a[-1] == die_at and world().rank() == 1:
                print(f"rank 1: killing myself at step {die_at}", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a)

        trainer._update = update
    if world().size() == 1:
        raise SystemExit("not started as a rank")
    try:
        losses, weights = run(out)
    except GemmaError as e:  # as the command line reports it
        raise SystemExit(f"gemma-mlx: error: {e}") from None
    if is_main():
        np.savez(out / "run.npz", losses=np.array(losses), **weights)


if __name__ == "__main__":
    main()
