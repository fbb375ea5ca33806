"""Convert HF checkpoints and GGUF files to MLX: streaming, sharded, optionally quantized."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlx.core as mx
from tqdm import tqdm

from ..config import MULTIMODAL_TYPES, ModelConfig
from ..errors import GemmaError
from ..models.shield import shield_key
from ..text.tokenizer import Tokenizer
from .calibrate import quantize_calibrated
from .loading import atomic_directory, resolve, weight_files
from .quantize import (
    RECIPES,
    Planned,
    Recipe,
    Spec,
    Tally,
    quantize_planned,
    quantize_tensor,
    recipe,
    vision_quantizable,
)

MAX_SHARD_BYTES = 5 << 30
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
                   "generation_config.json", "preprocessor_config.json",
                   "processor_config.json")
# transformers 5.x names -> the hub (4.x) layout that mlx-lm and mlx-vlm read.
_HUB_LAYOUT = (("model.language_model.", "language_model.model."),
               ("model.vision_tower.", "vision_tower."),
               ("model.multi_modal_projector.", "multi_modal_projector."))


def hub_key(key: str, multimodal: bool) -> str:
    for prefix, repl in _HUB_LAYOUT:
        if key.startswith(prefix):
            return repl + key[len(prefix):]
    if multimodal and key.startswith("lm_head."):
        return "language_model." + key
    return key


def _source_tensors(path: Path, dequantize: bool) -> tuple[dict, Iterator, Tokenizer | None]:
    """The source's config dict, an iterator of (name, array) and its tokenizer."""
    if path.is_file() and path.suffix == ".gguf":
        from .gguf import read_gguf

        g = read_gguf(path, dequantize=dequantize, progress=True)
        tok = Tokenizer.from_gguf_vocab(g.vocab) if g.vocab else None
        return g.config, iter(g.weights.items()), tok
    if not path.is_dir():
        raise GemmaError(f"{path}: expected a checkpoint directory or a .gguf file")
    config = ModelConfig.from_file(path / "config.json").raw
    files = weight_files(path)

    def tensors():
        for f in files:
            try:
                shard = mx.load(str(f))
            except Exception as e:
                raise GemmaError(f"{f}: cannot read safetensors ({e})") from None
            for name in list(shard):
                yield name, shard.pop(name)  # the shard's dict must not keep it alive

    return config, tensors(), None


def _dequantize_triplets(items: Iterator, quant: dict) -> Iterator:
    """Turn (weight, scales, biases) of an MLX-quantized source back into float."""
    pending: dict[str, dict[str, mx.array]] = {}
    for name, arr in items:
        base, _, leaf = name.rpartition(".")
        if leaf in ("scales", "biases") or (leaf == "weight" and arr.dtype == mx.uint32):
            parts = pending.setdefault(base, {})
            parts[leaf] = arr
            if {"weight", "scales", "biases"} <= parts.keys():
                spec = quant.get(base) if isinstance(quant.get(base), dict) else quant
                w = mx.dequantize(parts["weight"], parts["scales"], parts["biases"],
                                  spec["group_size"], spec["bits"])
                yield f"{base}.weight", w
                del pending[base]
        else:
            yield name, arr
    if pending:
        raise GemmaError(f"incomplete quantized tensors in the source: {sorted(pending)[:3]}")


class ShardWriter:
    """Collects tensors and writes safetensors shards of at most max_bytes each."""

    def __init__(self, directory: Path, max_bytes: int = MAX_SHARD_BYTES):
        self.directory, self.max_bytes = directory, max_bytes
        self.current: dict[str, mx.array] = {}
        self.size = 0
        self.shards: list[list[str]] = []
        self.total = 0

    def add(self, name: str, arr: mx.array) -> None:
        mx.eval(arr)
        if self.current and self.size + arr.nbytes > self.max_bytes:
            self.flush()
        self.current[name] = arr
        self.size += arr.nbytes
        self.total += arr.nbytes

    def flush(self) -> None:
        if not self.current:
            return
        n = len(self.shards)
        mx.save_safetensors(str(self.directory / f"shard-{n}.safetensors"), self.current,
                            metadata={"format": "mlx"})
        self.shards.append(list(self.current))
        self.current, self.size = {}, 0
        mx.clear_cache()

    def finish(self) -> None:
        """Name the shards model[-0000i-of-0000n].safetensors and write the index."""
        self.flush()
        n = len(self.shards)
        names = ["model.safetensors"] if n == 1 else [
            f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        weight_map = {}
        for i, (keys, final) in enumerate(zip(self.shards, names, strict=True)):
            os.replace(self.directory / f"shard-{i}.safetensors", self.directory / final)
            weight_map.update({k: final for k in keys})
        if n > 1:
            index = {"metadata": {"total_size": self.total}, "weight_map": weight_map}
            (self.directory / "model.safetensors.index.json").write_text(
                json.dumps(index, indent=2, sort_keys=True))


def convert(
    hf_path: str | Path, mlx_path: str | Path, *, quantize: bool = False,
    q_bits: int | None = None, q_group_size: int | None = None, dtype: str | None = None,
    quant_recipe: str | None = None, dequantize: bool = False, force: bool = False,
    search: bool = True, max_shard_bytes: int = MAX_SHARD_BYTES, vision_bits: int | None = None,
    calibrate: bool = True, progress: bool = True,
) -> dict[str, Any]:
    """Convert a checkpoint; returns a summary (bits per weight, sizes, paths).

    `quantize` alone means the "default" recipe, calibrated unless `calibrate` is False;
    `q_bits`/`q_group_size` mean uniform groups (4 and 64 where one is missing). Reads and
    writes one tensor at a time, so memory stays near one shard; a calibrated recipe holds
    one decoder layer at a time plus the embedding. The vision tower and projector stay in
    float unless `vision_bits` (8) quantizes the tower's linear layers.
    """
    src, out = resolve(hf_path), Path(mlx_path)
    if out.exists() and not force:  # before any slow reading
        raise GemmaError(f"{out}: already exists (use --force to overwrite)")
    if dtype is not None and dtype not in DTYPES:
        raise GemmaError(f"--dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
    rec = _chosen_recipe(quantize, q_bits, q_group_size, quant_recipe)
    if vision_bits not in (None, 8):
        raise GemmaError("--vision-bits must be 8 (or unset to keep the vision tower in float)")
    vision_specs = [Spec(vision_bits, g) for g in (64, 32)] if vision_bits else []
    config, items, tokenizer = _source_tensors(src, dequantize or rec is not None)
    cfg = ModelConfig.from_dict(config, str(src))  # validates the architecture
    if cfg.quantization and (rec is not None or dequantize):
        items = _dequantize_triplets(items, cfg.quantization)
    tokenizer = tokenizer or (Tokenizer.from_dir(src) if src.is_dir() else None)
    calibrated = rec is not None and rec.calibrated and search and calibrate
    if calibrated and tokenizer is None:
        print(f"{src}: no tokenizer to encode the calibration text with; quantizing without "
              "calibration")
        calibrated = False
    named = _renamed(items, cfg, dtype)
    if rec is None:
        planned: Planned = ((n, a, None) for n, a in named)
    elif calibrated:
        planned = quantize_calibrated(cfg, dict(named), rec.policy, tokenizer, progress)
    else:
        planned = (t for n, a in named for t in quantize_planned(n, a, rec.policy, search))
    if not calibrated:
        planned = tqdm(planned, desc="Converting", unit="tensor", disable=not progress)
    with atomic_directory(out, force) as tmp:
        writer = ShardWriter(tmp, max_shard_bytes)
        tally = Tally()
        for name, arr, spec in _with_vision(planned, vision_specs, search):
            writer.add(name, arr)
            tally.add(name, arr, spec)
        writer.finish()
        quantization = tally.quantization() if tally.entries else None
        _write_config(tmp, config, quantization, dtype, dequantize)
        _copy_tokenizer(src, tmp, tokenizer)
    return {"path": out, "bpw": tally.bpw, "bytes": writer.total,
            "shards": len(writer.shards), "quantized": len(tally.entries),
            "recipe": rec.description if rec else None, "calibrated": calibrated}


def _chosen_recipe(quantize: bool, bits: int | None, group_size: int | None,
                   name: str | None) -> Recipe | None:
    """-q alone: the default recipe; with --q-bits/--q-group-size: uniform groups."""
    if name is not None:
        return recipe(name)
    if not quantize:
        return None
    if bits is None and group_size is None:
        return recipe("default")
    return recipe(None, bits or 4, group_size or 64)


def _renamed(items: Iterator, cfg: ModelConfig, dtype: str | None) -> Iterator:
    """The source's tensors under the hub names mlx-lm and mlx-vlm read, in `dtype`."""
    multimodal, shield = cfg.model_type in MULTIMODAL_TYPES, cfg.model_type == "shieldgemma2"
    for name, arr in items:
        name = hub_key(shield_key(name) if shield else name, multimodal)
        if dtype and mx.issubdtype(arr.dtype, mx.floating):
            arr = arr.astype(DTYPES[dtype])
        yield name, arr


def _with_vision(planned: Planned, vision_specs: list[Spec], search: bool) -> Planned:
    """The vision tower's linear layers quantized (groups of 64, else 32) when asked."""
    for name, arr, spec in planned:
        path = name[: -len(".weight")]
        vspec = None
        if spec is None and name.endswith(".weight"):
            vspec = next((v for v in vision_specs
                          if vision_quantizable(path, arr.shape, v.group_size)), None)
        if vspec is None:
            yield name, arr, spec
        else:
            for k, v in quantize_tensor(path, arr, vspec, search).items():
                yield k, v, vspec


def _write_config(directory: Path, config: dict, quantization: dict | None,
                  dtype: str | None, dequantized: bool) -> None:
    config = dict(config)
    if quantization or dequantized:
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    if quantization:
        config["quantization"] = config["quantization_config"] = quantization
    if dtype:
        config["torch_dtype"] = config["dtype"] = dtype
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def _copy_tokenizer(src: Path, directory: Path, tokenizer: Tokenizer | None) -> None:
    if tokenizer is not None:
        tokenizer.save(directory)
    if src.is_dir():
        for name in TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, directory / name)
    if not (directory / "generation_config.json").is_file():
        gen = {"bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0}
        (directory / "generation_config.json").write_text(json.dumps(gen, indent=2))


def recipe_names() -> dict[str, str]:
    return {name: r.description for name, r in RECIPES.items()}


def quality_report(reference_path: str | Path, converted: str | Path
                   ) -> dict[str, dict[str, float]] | None:
    """Score a converted model against its float source on each built-in held-out text:
    {language: {top1, kl, ppl, ref_ppl, tokens}} (None when the checkpoint has no tokenizer
    to encode the texts with)."""
    from .loading import load
    from .quality import compare, heldout_sets

    model, tokenizer = load(converted)
    if tokenizer is None:
        return None
    reference = _float_reference(resolve(reference_path))
    report = {}
    texts = heldout_sets(tokenizer)
    for lang, ids in tqdm(texts.items(), total=len(texts), desc="Quality report", unit="text"):
        q = compare(reference, model, ids)
        report[lang] = {"top1": q.top1, "kl": q.kl, "ppl": q.ppl, "ref_ppl": q.ref_ppl,
                        "tokens": len(ids)}
    return report


def _float_reference(src: Path):
    """The unquantized source model in float32 (GGUF and MLX-quantized sources dequantized)."""
    from .loading import build_model

    config, items, _ = _source_tensors(src, dequantize=True)
    cfg = ModelConfig.from_dict(config, str(src))
    if cfg.quantization:
        items = _dequantize_triplets(items, cfg.quantization)
        config = {k: v for k, v in config.items()
                  if k not in ("quantization", "quantization_config")}
        cfg = ModelConfig.from_dict(config, str(src))
    weights = {k: v.astype(mx.float32) if mx.issubdtype(v.dtype, mx.floating) else v
               for k, v in items}
    return build_model(cfg, weights, str(src))
