"""Memory preflight: a run's memory, estimated before loading, against what is available."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GemmaError
from . import memory_sizes as sizes
from .memory_lora import lora_bytes

# The memory to plan for, in GB, instead of the measured one: for tests, and for users who
# know better (memory other programs will free, or a share of a machine kept for others).
AVAILABLE_ENV = "GEMMA_MLX_AVAILABLE_GB"
# chat and serve cannot know their prompts: they are checked for a conversation of this many
# tokens per sequence (a long turn with its history), not for the model's whole context
TYPICAL_CONTEXT = 4096
# <bos> and the chat template's turn markers around a prompt: under 20 tokens in practice
PROMPT_OVERHEAD = 64
IMAGE_TOKENS = 260  # "\n\n<start_of_image>", 256 image tokens, "<end_of_image>\n\n"
PAN_AND_SCAN_IMAGES = 5  # an image and at most 4 crops (media.image_processing PanAndScan)
SERVE_SLACK = 32  # ring slots the server's prefix cache asks for (serve.prefix_cache)


@dataclass
class Estimate:
    """A run's memory in named parts (bytes); `loading` parts exist only while loading."""

    model: str
    parts: list[tuple[str, int]] = field(default_factory=list)
    loading: list[tuple[str, int]] = field(default_factory=list)

    def add(self, label: str, nbytes: int | None, loading: bool = False) -> None:
        if nbytes:  # an unknown (None) or empty part is left out
            (self.loading if loading else self.parts).append((label, int(nbytes)))

    @property
    def total(self) -> int:
        """The peak: everything held while running, or the weights plus the loading
        transients if that is more."""
        held = sum(n for _, n in self.parts)
        weights = sum(n for label, n in self.parts if label == "weights")
        return max(held, weights + sum(n for _, n in self.loading))

    def describe(self) -> str:
        text = " + ".join(f"{label} {fmt_bytes(n)}" for label, n in self.parts)
        if self.loading:
            text += "; while loading, " + " + ".join(f"{label} {fmt_bytes(n)}"
                                                      for label, n in self.loading)
        return text


def fmt_bytes(n: float) -> str:
    """1.2 GB, 345 MB or 12 KB (decimal units, as the rest of the CLI prints them)."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{max(n / 1e3, 1):.0f} KB"


def available_memory() -> tuple[int | None, str]:
    """Bytes this run may use, and where the number comes from (None: unknown).

    $GEMMA_MLX_AVAILABLE_GB wins. Linux: MemAvailable (/proc/meminfo). macOS with Metal:
    Metal's recommended working set for the GPU (what MLX can keep resident), else the
    machine's memory (sysctl hw.memsize).
    """
    env = os.environ.get(AVAILABLE_ENV)
    if env:
        try:
            gb = float(env)
        except ValueError:
            gb = -1.0
        if not 0 <= gb < float("inf"):
            raise GemmaError(f"${AVAILABLE_ENV}={env!r}: expected a number of GB")
        return int(gb * 1e9), f"${AVAILABLE_ENV}"
    if sys.platform == "darwin":
        return _macos_memory()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "MemAvailable"
    except (OSError, ValueError, IndexError):
        pass
    return None, ""


def _macos_memory() -> tuple[int | None, str]:
    import mlx.core as mx

    if mx.metal.is_available():
        info = mx.device_info(mx.gpu) if hasattr(mx, "device_info") else mx.metal.device_info()
        size = info.get("max_recommended_working_set_size")
        if size:
            return int(size), "Metal's recommended working set"
    try:
        out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True,
                             timeout=5)
        return int(out.stdout.strip()), "hw.memsize"
    except (OSError, ValueError, subprocess.SubprocessError):
        return None, ""


def estimate(path: str | Path, *, context: int, batch: int = 1, kv_bits: int | None = None,
             dtype: Any = None, slack: int = 0, reserved: int | None = None,
             prefill_step: int = 512, images: int = 0, name: str | None = None) -> Estimate:
    """Weights, KV cache and workspaces of running the checkpoint at `path` (a directory or
    .gguf file) for `batch` sequences of `context` tokens; unknown parts are left out."""
    path = Path(path)
    est = Estimate(name or path.name)
    est.add("weights", sizes.weights_bytes(path, dtype))
    cfg = sizes.model_config(path)
    if cfg is None:
        return est
    act = sizes.activation_bytes(path, dtype)
    kv = sizes.kv_cache_bytes(cfg, context, dtype_bytes=act, kv_bits=kv_bits, slack=slack,
                              batch=batch, reserved=reserved)
    count = f"{context:,}" if batch == 1 else f"{batch} x {context:,}"
    est.add(f"KV cache for {count} tokens", kv)
    if dtype is None:  # set_dtype would undo the CPU kernel's float32 condition: skip it
        est.add("CPU kernel's 8-bit weight copies", sizes.cpu_repack_bytes(path))
    est.add("prefill workspace", sizes.prefill_workspace_bytes(
        cfg, context, prefill_step, sizes.is_quantized(path), act))
    if images:
        est.add("vision workspace", sizes.vision_workspace_bytes(_vision_config(path)))
    if path.suffix == ".gguf":
        est.add("GGUF import", sizes.gguf_import_bytes(path), loading=True)
    return est


def _vision_config(path: Path) -> dict | None:
    import json

    try:
        return json.loads((path / "config.json").read_text()).get("vision_config")
    except (OSError, ValueError, AttributeError):
        return None


def preflight(est: Estimate, *, force: bool = False, hint: str = "") -> None:
    """Raise GemmaError naming the parts when `est` exceeds the available memory; with
    `force`, warn on stderr and go on."""
    available, source = available_memory()
    if available is None or est.total <= available:
        return
    message = (f"{est.model}: needs {fmt_bytes(est.total)} ({est.describe()}), "
               f"{fmt_bytes(available)} available ({source})")
    if force:
        print(f"gemma-mlx: warning: {message}; going on (--force)", file=sys.stderr)
        return
    raise GemmaError(f"{message}; use --force to try anyway" + (f", or {hint}" if hint else ""))


def text_tokens_bound(*texts: str | None) -> int:
    """An upper bound of the tokens of these texts before a tokenizer is at hand: their
    UTF-8 bytes (a SentencePiece token covers at least one byte, byte fallback included),
    plus PROMPT_OVERHEAD for <bos> and the chat template's markers."""
    return PROMPT_OVERHEAD + sum(len(t.encode("utf-8", "replace")) for t in texts if t)


def jsonl_tokens_bound(path: str | Path) -> int | None:
    """An upper bound of the longest record's tokens in a JSONL file: its longest line in
    bytes (JSON's quotes and keys outweigh the turn markers the template adds)."""
    try:
        with open(path, "rb") as f:
            return PROMPT_OVERHEAD + max((len(line) for line in f), default=0)
    except OSError:
        return None  # the command itself will say what is wrong with the file


def _json_arg_bytes(value: str | None) -> int:
    """The size of a --tools / --json-schema value: inline JSON or a file's; twice that, as
    the template renders it with indentation."""
    if not value:
        return 0
    if value.lstrip().startswith(("{", "[")):
        return 2 * len(value.encode())
    try:
        return 2 * os.path.getsize(value)
    except OSError:
        return 0


def _draft_parts(est: Estimate, draft: str | None, context: int, kv_bits: int | None) -> None:
    if not draft or not Path(draft).exists():
        return  # a Hub repo id not downloaded yet: unknown, left out
    d = estimate(draft, context=context, kv_bits=kv_bits)  # its weights and KV cache
    est.add("draft model", sum(n for label, n in d.parts if label == "weights"
                               or label.startswith("KV cache")))


def preflight_command(command: str, path: str | Path, o: dict[str, Any]) -> Estimate | None:
    """The preflight of a `gemma-mlx` subcommand run on the checkpoint at `path`, from its
    options (the CLI's flags by dest name; lora's merged options). Returns the estimate."""
    build = {"generate": _generate_estimate, "chat": _generate_estimate,
             "batch": _batch_estimate, "serve": _serve_estimate, "lora": _lora_estimate}
    if command not in build:
        return None
    path = Path(path)
    est, hint = build[command](command, path, o, str(o.get("model") or path.name))
    if command != "lora" and o.get("kv_bits") != 4:
        hint += ", or use --kv-bits 4"
    preflight(est, force=bool(o.get("force")), hint=hint)
    return est


def _limit(path: Path) -> int:
    cfg = sizes.model_config(path)
    return cfg.max_position_embeddings if cfg else 1 << 30


def _generate_estimate(command: str, path: Path, o: dict[str, Any],
                       name: str) -> tuple[Estimate, str]:
    """generate: the prompt's bytes bound its tokens (images and tools added); chat: one
    TYPICAL_CONTEXT conversation. Both plus every token asked for, and the draft tokens."""
    images = len(o.get("image") or []) * (PAN_AND_SCAN_IMAGES if o.get("pan_and_scan") else 1)
    images += len(o.get("video") or []) * (o.get("max_frames") or 8)  # each frame an image
    if command == "generate":
        prompt = (text_tokens_bound(o.get("prompt"), o.get("system"))
                  + _json_arg_bytes(o.get("tools")) + images * IMAGE_TOKENS)
    else:
        prompt = TYPICAL_CONTEXT
    drafts = (o.get("num_draft_tokens") or 8) if o.get("draft_model") or o.get(
        "prompt_lookup") else 0
    context = min(_limit(path), prompt + o["max_tokens"] + drafts)
    est = estimate(path, context=context, kv_bits=o.get("kv_bits"),
                   prefill_step=o.get("prefill_step_size") or 512, images=images, name=name)
    _draft_parts(est, o.get("draft_model"), context, o.get("kv_bits"))
    return est, "lower --max-tokens"


def _batch_estimate(command: str, path: Path, o: dict[str, Any],
                    name: str) -> tuple[Estimate, str]:
    """--batch-size sequences of the longest input line plus --max-tokens; the batch rows
    start with room for the prompt + 256 tokens and double when full."""
    prompt = jsonl_tokens_bound(o["input"]) or TYPICAL_CONTEXT
    context = min(_limit(path), prompt + o["max_tokens"])
    est = estimate(path, context=context, batch=o["batch_size"], kv_bits=o.get("kv_bits"),
                   reserved=prompt + min(o["max_tokens"], 256),
                   prefill_step=o.get("prefill_step_size") or 512, name=name)
    _cap_kv(est, o.get("kv_budget"))
    return est, "lower --batch-size or --max-tokens, or set --kv-budget"


def _serve_estimate(command: str, path: Path, o: dict[str, Any],
                    name: str) -> tuple[Estimate, str]:
    """--max-concurrency sequences of TYPICAL_CONTEXT tokens, and the prefix cache's budget."""
    cache = int((o.get("cache_gb") or 0) * 1e9)
    est = estimate(path, context=min(_limit(path), TYPICAL_CONTEXT),
                   batch=o["max_concurrency"], kv_bits=o.get("kv_bits"),
                   slack=SERVE_SLACK if cache else 0,
                   prefill_step=o.get("prefill_step_size") or 512, name=name)
    est.add("prefix cache (--cache-gb)", cache)
    return est, "lower --max-concurrency or --cache-gb"


def _cap_kv(est: Estimate, budget_gb: float | None) -> None:
    """--kv-budget bounds the running sequences' KV memory (one sequence always runs)."""
    if not budget_gb:
        return
    for i, (label, n) in enumerate(est.parts):
        if label.startswith("KV cache"):
            est.parts[i] = (label + " within --kv-budget", min(n, int(budget_gb * 1e9)))


def _lora_estimate(command: str, path: Path, o: dict[str, Any],
                   name: str) -> tuple[Estimate, str]:
    """Weights, then training (or, with --test only, evaluation) at the batch size and the
    sequence length: --max-seq-length, or less when the data's longest line is shorter."""
    hint = "lower --batch-size or --max-seq-length" + (
        "" if o.get("grad_checkpoint") else ", or use --grad-checkpoint")
    est = Estimate(name)
    est.add("weights", sizes.weights_bytes(path))
    cfg = sizes.model_config(path)
    if cfg is None or not (o.get("train") or o.get("test")):
        return est, hint
    data = Path(o.get("data") or "data")
    bounds = [jsonl_tokens_bound(data / f"{s}.jsonl") for s in ("train", "valid", "test")]
    seq = min([o["max_seq_length"]] + [b for b in bounds if b is not None])
    for label, n in lora_bytes(
            cfg, batch=o["batch_size"], seq=seq, num_layers=o["num_layers"],
            rank=o["lora_rank"], targets=tuple(o["target_modules"]),
            grad_checkpoint=bool(o.get("grad_checkpoint")),
            act_bytes=sizes.activation_bytes(path), quantized=sizes.is_quantized(path),
            train=bool(o.get("train"))):
        est.add(label, n)
    if path.suffix == ".gguf":
        est.add("GGUF import", sizes.gguf_import_bytes(path), loading=True)
    return est, hint
