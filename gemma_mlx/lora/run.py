"""`gemma-mlx lora` and `gemma-mlx fuse`: load, train or test, fuse and save."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten

from ..distributed import is_main, world
from ..errors import GemmaError
from ..formats.loading import load, resolve
from .data import load_dataset
from .layers import DEFAULT_TARGETS, apply_lora, fuse_lora, lora_config
from .trainer import ADAPTERS, TrainingArgs, evaluate, train

DEFAULTS: dict[str, Any] = {
    "model": None, "data": "data", "train": False, "test": False, "iters": 100,
    "batch_size": 4, "learning_rate": 1e-5, "num_layers": 16, "lora_rank": 8,
    "lora_scale": 20.0, "lora_dropout": 0.0, "target_modules": list(DEFAULT_TARGETS),
    "max_seq_length": 2048, "mask_prompt": True, "grad_checkpoint": False,
    "steps_per_report": 10, "steps_per_eval": 200, "val_batches": 25, "save_every": 100,
    "resume_adapter_file": None, "adapter_path": "adapters", "seed": 0, "test_batches": -1,
}


def merge_config(cli: dict[str, Any], config_file: str | None) -> dict[str, Any]:
    """Defaults < YAML config file (-c) < flags given on the command line."""
    options = dict(DEFAULTS)
    if config_file:
        import yaml

        try:
            loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise GemmaError(f"{config_file}: cannot read the config ({e})") from None
        unknown = sorted(set(loaded) - set(DEFAULTS))
        if unknown:
            raise GemmaError(f"{config_file}: unknown option(s) {unknown}")
        options.update(loaded)
    options.update({k: v for k, v in cli.items() if v is not None and k in DEFAULTS})
    return options


def run_lora(options: dict[str, Any]) -> dict[str, float]:
    """Train and/or test adapters as `options` (see DEFAULTS) say; returns the metrics."""
    from ..formats.default_model import ensure_default_model

    o = options
    group = world()  # first: a launched rank waits here for the others, not after loading
    model, tokenizer = load(o["model"] or ensure_default_model())
    if tokenizer is None:
        raise GemmaError(f"{o['model']}: has no tokenizer")
    splits = tuple(s for s, on in (("train", o["train"]), ("valid", o["train"]),
                                   ("test", o["test"])) if on)
    data = load_dataset(o["data"], tokenizer, o["mask_prompt"], splits)
    targets = tuple(o["target_modules"])
    adapter_dir = Path(o["adapter_path"])
    metrics: dict[str, float] = {}
    if o["train"]:
        mx.random.seed(o["seed"])  # the adapters' initialisation too, so --seed repeats a run
        n = apply_lora(model, o["num_layers"], o["lora_rank"], o["lora_scale"],
                       o["lora_dropout"], targets)
        params = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
        if is_main(group):
            print(f"LoRA on {n} modules: {params / 1e6:.3f}M trainable parameters"
                  + (f", data-parallel over {group.size()} ranks" if group.size() > 1 else ""))
        args = TrainingArgs(**{k: o[k] for k in TrainingArgs.__dataclass_fields__})
        cfg = lora_config(o["num_layers"], o["lora_rank"], o["lora_scale"], o["lora_dropout"],
                          targets)
        losses = train(model, data, args, adapter_dir, cfg, o["resume_adapter_file"], group)
        metrics["train_loss"] = losses[-1] if losses else math.nan
    elif o["test"] and (adapter_dir / ADAPTERS).is_file():
        model, _ = load(o["model"] or ensure_default_model(), adapter_path=adapter_dir)
    if o["test"]:
        model.eval()
        loss = evaluate(model, data["test"], o["batch_size"], o["max_seq_length"],
                        o["test_batches"], group=group)
        metrics.update(test_loss=loss, test_ppl=math.exp(loss))
        if is_main(group):
            print(f"Test loss {loss:.3f}, test perplexity {math.exp(loss):.3f}")
    return metrics


def fuse(model_path: str | Path, adapter_path: str | Path, save_path: str | Path,
         dequantize: bool = False, force: bool = False) -> Path:
    """Fold adapters into the base weights and save a standalone model."""
    from ..formats.convert import _source_tensors
    from ..formats.loading import save

    model, tokenizer = load(model_path, adapter_path=adapter_path)
    fuse_lora(model, dequantize)
    config, _, _ = _source_tensors(resolve(model_path), dequantize=False)
    config = dict(config)
    if dequantize:
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    weights = dict(tree_flatten(model.parameters()))
    config["fused_adapter"] = json.loads((Path(adapter_path) / "adapter_config.json").read_text())
    return save(save_path, weights, config, tokenizer, force=force)
