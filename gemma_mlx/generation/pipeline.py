"""Pipeline-parallel generation on mx.distributed: each rank holds a contiguous run of decoder
layers and their KV caches (rank 0 also the embedding, final norm and head), and the unchanged
generate loop runs on every rank."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from ..attention import Blocks
from ..config import ModelConfig
from ..distributed import broadcast, waiting
from ..errors import GemmaError
from ..formats.loading import quantize_like, read_safetensors, resolve, weight_files
from ..models.text import Gemma3ForCausalLM
from ..text.tokenizer import Tokenizer

_LAYER = re.compile(r"model\.layers\.(\d+)\.")


def layer_of(name: str) -> int | None:
    """The decoder layer a (sanitized) weight belongs to; None for embedding, norm, head."""
    m = _LAYER.match(name)
    return int(m.group(1)) if m else None


def split_layers(sizes: list[int], extra: int, n: int) -> list[range]:
    """n contiguous, non-empty runs of layers (bytes `sizes`) that minimise the largest rank's
    bytes, rank 0 also holding `extra` (embedding, norm, head: a tied matrix stored once);
    among those, the most even (least sum of squared bytes)."""
    count = len(sizes)
    if not 1 <= n <= count:
        raise GemmaError(f"{n} ranks for a model with {count} decoder layers: a pipeline needs "
                         f"at least one layer per rank (start at most {count} ranks)")
    at = [0]
    for s in sizes:
        at.append(at[-1] + s)
    largest = _split(at, extra, n, max)[0]
    return _split(at, extra, n, lambda a, b: a + b, lambda x: x * x if x <= largest else
                  float("inf"))[1]


def _split(at: list[int], extra: int, n: int, combine, cost=lambda x: x
           ) -> tuple[float, list[range]]:
    """The best split of layers (prefix sums `at`) over n ranks by a cost per rank's bytes,
    combined over ranks by `combine` (max, or a sum): a dynamic programme over cut points."""
    count = len(at) - 1
    # best[r][i]: the cost when ranks 0..r hold layers 0..i-1; cut[r][i]: rank r's first layer
    best = [[float("inf")] * (count + 1) for _ in range(n)]
    cut = [[0] * (count + 1) for _ in range(n)]
    for i in range(1, count + 1):
        best[0][i] = cost(extra + at[i])
    for r in range(1, n):
        for i in range(r + 1, count + 1):
            for j in range(r, i):
                value = combine(best[r - 1][j], cost(at[i] - at[j]))
                if value < best[r][i]:
                    best[r][i], cut[r][i] = value, j
    ends = [count]
    for r in range(n - 1, 0, -1):
        ends.append(cut[r][ends[-1]])
    ends = [0, *reversed(ends)]
    return best[n - 1][count], [range(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)]


class PipelineModel:
    """One rank's stage of a Gemma 3 text model, driven like the whole Gemma3ForCausalLM.

    `model(ids, cache)` (what generate_step and prefill call as `model.model`) runs rank 0's
    embedding and layers, sends the hidden states to rank 1, ..., and the last rank's back to
    rank 0 (ring neighbours only); `logits(h)` is rank 0's head, and `agree(token)` (which the
    generate loop calls after sampling) gives every rank rank 0's token, so every rank runs
    the same loop and stops where rank 0 does. Caches exist for this rank's layers only.
    """

    def __init__(self, part: Gemma3ForCausalLM, layers: range, group: mx.distributed.Group,
                 dtype: mx.Dtype):
        self.config, self.part, self.layers = part.config, part, layers
        self.group, self.rank, self.size = group, group.rank(), group.size()
        self.dtype = dtype  # of the hidden states (the embedding's output)
        self.sent = 0  # bytes this rank has sent (hidden states, and its share of the logits)

    def forward(self, input_ids: mx.array | None, cache: list | None = None,
                input_embeddings: mx.array | None = None,
                image_blocks: Blocks | None = None) -> mx.array:
        """Final hidden states [B, L, hidden] on rank 0 (this rank's output elsewhere)."""
        if image_blocks or (input_embeddings is not None and self.rank != 0):
            raise GemmaError("images are not supported in a pipeline across ranks")
        text = self.part.model
        if self.rank == 0:
            h = text.embed(input_ids) if input_embeddings is None else input_embeddings
        else:
            h = self._recv((*input_ids.shape, self.config.hidden_size), self.rank - 1)
        for i, c in zip(self.layers, cache or [None] * len(self.layers), strict=True):
            h = text.layers[i](h, c)
        if self.size == 1:
            return text.norm(h)
        self._send(h, (self.rank + 1) % self.size)
        if self.rank != 0:
            return h
        return text.norm(self._recv(h.shape, self.size - 1))

    model = forward  # the generate loop calls model.model(ids, cache, ...)

    def logits(self, h: mx.array) -> mx.array:
        """Rank 0's logits [..., vocab] in float32; zeros on the other ranks, whose sampled
        token `agree` replaces with rank 0's (4 bytes a step instead of the logits' 1 MB)."""
        if self.rank == 0:
            return self.part.logits(h).astype(mx.float32)
        return mx.zeros((*h.shape[:-1], self.config.vocab_size), mx.float32)

    def agree(self, token: mx.array) -> mx.array:
        """Rank 0's sampled token(s) on every rank: each samples with the same code, so every
        rank stops (stop token, constraint, length) where rank 0 does."""
        return self._from_rank_0(token, "the sampled token")

    def __call__(self, input_ids: mx.array, cache: list | None = None) -> mx.array:
        """Logits [B, L, vocab] on every rank (for tests and benchmarks; the generate loop
        sends tokens, not logits)."""
        return self._from_rank_0(self.logits(self.forward(input_ids, cache)), "the logits")

    def _from_rank_0(self, x: mx.array, what: str) -> mx.array:
        if self.size == 1:
            return x
        with waiting(f"receiving {what} from rank 0", self.group):
            x = broadcast({"x": x}, self.group)["x"]
            mx.eval(x)
        self.sent += x.nbytes * (self.size - 1) // self.size  # what a ring all_sum sends
        return x

    def make_cache(self, kv_bits: int | None = None, slack: int = 0) -> list:
        """Caches for this rank's layers only."""
        every = self.part.make_cache(kv_bits, slack)
        return [every[i] for i in self.layers]

    def nbytes(self) -> int:
        """The bytes of the weights this rank holds."""
        return sum(v.nbytes for _, v in tree_flatten(self.part.parameters()))

    def _send(self, h: mx.array, dst: int) -> None:
        mx.eval(h)  # this rank's own layers: not a wait on the others
        with waiting(f"sending hidden states to rank {dst}", self.group):
            mx.eval(mx.distributed.send(h, dst, group=self.group))
        self.sent += h.nbytes

    def _recv(self, shape: tuple[int, ...], src: int) -> mx.array:
        with waiting(f"waiting for hidden states from rank {src}", self.group):
            h = mx.distributed.recv(shape, self.dtype, src, group=self.group)
            mx.eval(h)
        return h


_UNSUPPORTED = {"image": "--image", "video": "--video", "draft_model": "--draft-model",
                "prompt_lookup": "--prompt-lookup", "adapter_path": "--adapter-path (fuse the "
                "adapters first: gemma-mlx fuse)"}


def check_pipeline_options(options: dict[str, Any]) -> None:
    """A GemmaError for an option a pipeline across ranks does not support."""
    for key, flag in _UNSUPPORTED.items():
        if options.get(key):
            raise GemmaError(f"{flag} is not supported when generating across several ranks")


def _read(path: Path) -> tuple[ModelConfig, dict[str, mx.array], Tokenizer | None]:
    """Config, weights (lazy for safetensors: nothing is read until evaluated) and tokenizer."""
    if path.is_file() and path.suffix == ".gguf":
        from ..formats.gguf import read_gguf

        print("gemma-mlx: note: a .gguf file is read whole by every rank before it keeps its "
              "layers; `gemma-mlx convert` it first so each rank reads only its own",
              file=sys.stderr)
        g = read_gguf(path)
        tokenizer = Tokenizer.from_gguf_vocab(g.vocab, path) if g.vocab else None
        return ModelConfig.from_dict(g.config, str(path)), g.weights, tokenizer
    if not path.is_dir():
        raise GemmaError(f"{path}: expected a checkpoint directory or a .gguf file")
    config = ModelConfig.from_file(path / "config.json")
    return config, read_safetensors(weight_files(path)), Tokenizer.from_dir(path)


def load_pipeline(path_or_repo: str | Path, group: mx.distributed.Group
                  ) -> tuple[PipelineModel, Tokenizer | None]:
    """This rank's stage of the text model at `path_or_repo` and the tokenizer.

    Layers are split so the largest rank holds the fewest bytes; only this rank's tensors are
    evaluated (read from disk), the other layers' lazy arrays are dropped unread. Images,
    adapters and ShieldGemma 2 are not supported here.
    """
    start = time.perf_counter()
    path = resolve(path_or_repo)
    config, weights, tokenizer = _read(path)
    if config.model_type == "shieldgemma2":
        raise GemmaError("ShieldGemma 2 cannot run as a pipeline across ranks")
    part = Gemma3ForCausalLM(config.text)
    weights = part.sanitize(weights)
    if any(k.endswith(".scales") for k in weights):
        quantize_like(part, weights, config.quantization or {})
    try:  # every rank checks the whole checkpoint against the config: nothing is read yet
        part.load_weights(list(weights.items()), strict=True)
    except ValueError as e:
        raise GemmaError(f"{path}: weights do not fit the config: {e}") from None
    dtype = part.model.embed(mx.array([[0]])).dtype  # a lazy graph: only its type is looked at
    sizes = [0] * config.text.num_hidden_layers
    extra = 0
    for k, v in weights.items():
        i = layer_of(k)
        if i is None:
            extra += v.nbytes
        else:
            sizes[i] += v.nbytes
    del weights
    own = split_layers(sizes, extra, group.size())[group.rank()]
    _prune(part, own, group.rank() == 0)
    mx.eval(part.parameters())  # reads this rank's tensors, and only those
    if group.size() > 1:
        took = time.perf_counter() - start
        with waiting("waiting for the other ranks to load their layers", group, 4 * took):
            mx.eval(mx.distributed.all_sum(mx.array([1.0]), group=group))
    return PipelineModel(part, own, group, dtype), tokenizer


def _prune(part: Gemma3ForCausalLM, own: range, first: bool) -> None:
    """Drop the modules (and their unread lazy weights) this rank does not run."""
    layers = part.model.layers
    for i in range(len(layers)):
        if i not in own:
            layers[i] = nn.Module()
    if not first:
        for owner, name in ((part.model, "embed_tokens"), (part.model, "norm"), (part, "lm_head")):
            if name in owner:
                del owner[name]
