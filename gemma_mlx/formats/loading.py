"""load(path_or_repo) -> (model, tokenizer) for HF, MLX and GGUF checkpoints; save()."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ..config import ModelConfig
from ..errors import GemmaError
from ..models.multimodal import Gemma3ForConditionalGeneration, multimodal_key
from ..models.shield import ShieldGemma2ForImageClassification, read_policy_definitions
from ..models.text import Gemma3ForCausalLM, text_key
from ..prompt import IMAGE_TOKEN
from ..text.tokenizer import Tokenizer
from .safetensors_file import check_header, shard_names

_HUB_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model"]


def resolve(path_or_repo: str | Path) -> Path:
    """A local directory or .gguf file as is; otherwise an HF repo id, fetched from the Hub."""
    p = Path(path_or_repo).expanduser()
    if p.exists():
        return p
    s = str(path_or_repo)
    if s.endswith(".gguf") or s.startswith((".", "/", "~")) or s.count("/") != 1:
        raise GemmaError(f"{s}: no such file or directory")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(s, allow_patterns=_HUB_PATTERNS))
    except Exception as e:
        raise GemmaError(
            f"{s}: not a local path, and the Hugging Face Hub could not provide it "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "Check the repo id and your network, or pass a local directory."
        ) from None


def read_safetensors(files: list[Path]) -> dict[str, mx.array]:
    """Every tensor of `files`, each header checked first; lazy until evaluated."""
    weights: dict[str, mx.array] = {}
    for f in files:
        check_header(f)  # MLX's reader trusts the header; a crafted one must not reach it
        try:
            weights.update(mx.load(str(f)))
        except Exception as e:
            raise GemmaError(f"{f}: cannot read safetensors ({e}); is the file complete?") from None
    return weights


def weight_files(path: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory, checked against its index if any."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        names = shard_names(index)
        missing = [n for n in names if not (path / n).is_file()]
        if missing:
            raise GemmaError(f"{path}: shard(s) listed in the index are missing: {missing}")
        return [path / n for n in names]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise GemmaError(f"{path}: no *.safetensors weights found")
    return files


def quantize_like(model: nn.Module, weights: dict[str, Any], quant: dict[str, Any]) -> None:
    """Turn into quantized layers exactly the modules whose weights come with scales."""

    own_specs = {text_key(k) or multimodal_key(k): v for k, v in quant.items()
                 if isinstance(v, dict)}

    def predicate(name: str, module: nn.Module):
        if f"{name}.scales" not in weights:
            return False
        own = own_specs.get(name)
        if isinstance(own, dict):
            return {"group_size": own["group_size"], "bits": own["bits"]}
        return hasattr(module, "to_quantized")

    nn.quantize(model, quant.get("group_size", 64), quant.get("bits", 4),
                class_predicate=predicate)


def build_model(config: ModelConfig, weights: dict[str, Any], source: str) -> Gemma3ForCausalLM:
    """Instantiate the model, quantize as the weights say, and load them strictly.

    A config with a vision_config gives a Gemma3ForConditionalGeneration; a text-only
    conversion of a multimodal checkpoint (no vision weights) gives the text model.
    """
    if config.model_type == "shieldgemma2":
        model = ShieldGemma2ForImageClassification(config)
    elif config.vision is not None and any(multimodal_key(k) for k in weights):
        model = Gemma3ForConditionalGeneration(config)
    else:
        model = Gemma3ForCausalLM(config.text)
    weights = model.sanitize(weights)
    if any(k.endswith(".scales") for k in weights):
        quantize_like(model, weights, config.quantization or {})
    try:
        model.load_weights(list(weights.items()), strict=True)
    except ValueError as e:
        raise GemmaError(f"{source}: weights do not fit the config: {e}") from None
    mx.eval(model.parameters())
    return model


def load(
    path_or_repo: str | Path, dtype: mx.Dtype | None = None, progress: bool = False,
    adapter_path: str | Path | None = None,
) -> tuple[Gemma3ForCausalLM, Tokenizer | None]:
    """Load a Gemma 3 model and its tokenizer (None when the checkpoint has none).

    Accepts a local HF or MLX checkpoint directory, an HF repo id, or a .gguf file.
    The model keeps the checkpoint's dtype unless `dtype` is given; `adapter_path` applies
    LoRA adapters saved by `gemma-mlx lora` (or mlx-lm).
    """
    path = resolve(path_or_repo)
    if path.is_file() and path.suffix == ".gguf":
        model, tokenizer = load_gguf(path, progress=progress)
    elif path.is_dir():
        config = ModelConfig.from_file(path / "config.json")
        model = build_model(config, read_safetensors(weight_files(path)), str(path))
        tokenizer = Tokenizer.from_dir(path)
        if isinstance(model, ShieldGemma2ForImageClassification):
            model.policy_definitions = read_policy_definitions(path)
    else:
        raise GemmaError(f"{path}: expected a checkpoint directory or a .gguf file")
    if tokenizer is not None and isinstance(model, Gemma3ForConditionalGeneration):
        tokenizer.add_special_token(IMAGE_TOKEN, model.image_token_index)
    if dtype is not None:
        model.set_dtype(dtype)
    if adapter_path is not None:
        from ..lora.layers import load_adapters

        load_adapters(model, adapter_path)
    return model, tokenizer


def load_gguf(path: Path, progress: bool = False) -> tuple[Gemma3ForCausalLM, Tokenizer | None]:
    from .gguf import read_gguf

    g = read_gguf(path, progress=progress)
    model = build_model(ModelConfig.from_dict(g.config, str(path)), g.weights, str(path))
    tokenizer = Tokenizer.from_gguf_vocab(g.vocab, path) if g.vocab else None
    return model, tokenizer


def _remove_stale(parent: Path, prefix: str) -> None:
    """Delete what killed runs on this host left (a convert's partial output can be
    gigabytes): entries named `prefix<pid>-...` whose process is gone."""
    for entry in parent.glob(glob.escape(prefix) + "*"):
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running (or a new process with that id): leave it
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # someone else's live process
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | Path, force: bool = False) -> Iterator[Path]:
    """A temporary directory beside `path`, renamed to `path` when the block succeeds and
    removed when it fails, so no partial output ever looks valid."""
    path = Path(path)
    if path.exists() and not force:
        raise GemmaError(f"{path}: already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.partial-{socket.gethostname()}-"
    _remove_stale(path.parent, prefix)
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the checkpoint from others
    old = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        if path.exists():
            # Move the old output aside in one rename before deleting it: a kill inside
            # rmtree(path) would leave part of a checkpoint at `path`, loadable but incomplete.
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)  # the new output failed to land: keep the old one
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()


def save(
    path: str | Path,
    weights: dict[str, mx.array],
    config: dict[str, Any],
    tokenizer: Tokenizer | None = None,
    force: bool = False,
) -> Path:
    """Write an MLX checkpoint directory atomically."""
    with atomic_directory(path, force) as tmp:
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        gen = {"bos_token_id": config.get("bos_token_id", 2),
               "eos_token_id": config.get("eos_token_id", [1, 106]),
               "pad_token_id": config.get("pad_token_id", 0)}
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2))
        if tokenizer is not None:
            tokenizer.save(tmp)
    return Path(path)
