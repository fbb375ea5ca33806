"""The Gemma 3 text decoder, with HF weight names (model.layers.N.self_attn.q_proj, ...)."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ..attention import Blocks, attend
from ..cache import Cache, KVCache, RotatingKVCache
from ..config import FULL, SLIDING, TextConfig
from .layers import MLP, RMSNorm, apply_rope
from .quantized import Embedding, Linear

# Text weights of a multimodal checkpoint: hub layout, transformers 5.x internal names, then
# anything else under `language_model.` (e.g. an untied `language_model.lm_head`).
_PREFIXES = (
    ("language_model.model.", "model."),
    ("model.language_model.", "model."),
    ("language_model.", ""),
)


class Rows:
    """A ragged batch for one layer: each sequence's token count and its own cache.

    The sequences' tokens lie side by side in one [1, T, hidden] array, so the projections
    and the MLP run once for all of them (each weight read once per step). The first
    `len(positions)` sequences decode one token each from the shared `batch` buffer, in one
    batched attention; the others (prefill chunks) attend over their own caches.
    """

    def __init__(self, lengths: list[int], caches: list[Cache], batch: Any = None,
                 rows: list[int] = (), positions: list[int] = ()):
        self.lengths, self.caches = lengths, caches
        self.batch, self.rows, self.positions = batch, list(rows), list(positions)


class Attention(nn.Module):
    def __init__(self, cfg: TextConfig, layer: int):
        super().__init__()
        self.n_heads = cfg.num_attention_heads
        self.n_kv_heads = cfg.num_key_value_heads
        self.head_dim = d = cfg.head_dim
        self.scale = cfg.query_pre_attn_scalar**-0.5
        self.window = cfg.sliding_window if cfg.is_sliding(layer) else None
        self.rope = cfg.rope[SLIDING if cfg.is_sliding(layer) else FULL]
        h = cfg.hidden_size
        self.q_proj = Linear(h, self.n_heads * d, bias=False)
        self.k_proj = Linear(h, self.n_kv_heads * d, bias=False)
        self.v_proj = Linear(h, self.n_kv_heads * d, bias=False)
        self.o_proj = Linear(self.n_heads * d, h, bias=False)
        self.q_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.k_norm = RMSNorm(d, cfg.rms_norm_eps)

    def __call__(self, x: mx.array, cache: Cache | Rows | None, blocks: Blocks = ()) -> mx.array:
        if isinstance(cache, Rows):
            return self._rows(x, cache)
        b, n, _ = x.shape
        q = self.q_proj(x).reshape(b, n, self.n_heads, -1).transpose(0, 2, 1, 3)  # [B, H, L, D]
        k = self.k_proj(x).reshape(b, n, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(b, n, self.n_kv_heads, -1).transpose(0, 2, 1, 3)
        q, k = self.q_norm(q), self.k_norm(k)  # before RoPE, as in the reference
        offset = cache.offset if cache is not None else 0
        q, k = apply_rope(q, self.rope, offset), apply_rope(k, self.rope, offset)
        out = attend(q, k, v, cache, scale=self.scale, window=self.window, blocks=blocks)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(b, n, -1))

    def _rows(self, x: mx.array, rows: Rows) -> mx.array:
        t = x.shape[1]
        q = self.q_norm(self.q_proj(x).reshape(1, t, self.n_heads, -1))  # [1, T, H, D]
        k = self.k_norm(self.k_proj(x).reshape(1, t, self.n_kv_heads, -1))
        v = self.v_proj(x).reshape(1, t, self.n_kv_heads, -1)
        outs, start = [], 0
        if rows.rows:
            m = start = len(rows.rows)
            qd, kd, vd = (a[0, :m, :, None] for a in (q, k, v))  # [m, H, 1, D]
            pos = mx.array(rows.positions)
            qd, kd = apply_rope(qd, self.rope, pos), apply_rope(kd, self.rope, pos)
            out = rows.batch.decode(qd, kd, vd, rows.rows, rows.positions, self.scale)
            outs.append(out.reshape(1, m, -1))
        for n, cache in zip(rows.lengths[len(rows.rows):], rows.caches, strict=True):
            qi, ki, vi = (a[:, start : start + n].transpose(0, 2, 1, 3) for a in (q, k, v))
            qi, ki = apply_rope(qi, self.rope, cache.offset), apply_rope(ki, self.rope,
                                                                          cache.offset)
            out = attend(qi, ki, vi, cache, scale=self.scale, window=self.window)
            outs.append(out.transpose(0, 2, 1, 3).reshape(1, n, -1))
            start += n
        return self.o_proj(mx.concatenate(outs, axis=1) if len(outs) > 1 else outs[0])


class DecoderLayer(nn.Module):
    """Sandwich norms around attention and the MLP."""

    def __init__(self, cfg: TextConfig, layer: int):
        super().__init__()
        eps = cfg.rms_norm_eps
        self.self_attn = Attention(cfg, layer)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size)
        self.input_layernorm = RMSNorm(cfg.hidden_size, eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, eps)
        self.pre_feedforward_layernorm = RMSNorm(cfg.hidden_size, eps)
        self.post_feedforward_layernorm = RMSNorm(cfg.hidden_size, eps)

    def __call__(self, x: mx.array, cache: Cache | Rows | None, blocks: Blocks = ()) -> mx.array:
        h = x + self.post_attention_layernorm(
            self.self_attn(self.input_layernorm(x), cache, blocks))
        return h + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(h)))


class TextModel(nn.Module):
    """Embedding (scaled by sqrt(hidden) in the weights' dtype), layers, final norm."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.embed_tokens = Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = [DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)]
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.hidden_size = cfg.hidden_size

    def embed(self, input_ids: mx.array) -> mx.array:
        h = self.embed_tokens(input_ids)
        return h * mx.array(self.hidden_size**0.5, mx.float32).astype(h.dtype)

    def __call__(
        self,
        input_ids: mx.array | None,
        cache: list[Cache] | None = None,
        input_embeddings: mx.array | None = None,
        image_blocks: Blocks | None = None,
    ) -> mx.array:
        """Final hidden states; `image_blocks` are the image spans (absolute positions) whose
        tokens attend to each other both ways."""
        h = self.embed(input_ids) if input_embeddings is None else input_embeddings
        cache = cache or [None] * len(self.layers)
        for layer, c in zip(self.layers, cache, strict=True):
            h = layer(h, c, image_blocks or ())
        return self.norm(h)

    def rows(self, input_ids: mx.array, lengths: list[int], caches: list[list[Cache]],
             batch: list[Any] | None = None, rows: list[int] = (), positions: list[int] = ()
             ) -> mx.array:
        """Final hidden states [1, T, hidden] of a ragged batch: sequence i's `lengths[i]` new
        tokens (side by side in input_ids [T]) continue its own `caches[i]`; the first
        len(rows) sequences decode from rows `rows` of `batch` (a BatchLayerCache per layer)
        at `positions`, and have no entry in `caches`."""
        h = self.embed(input_ids[None])
        for i, layer in enumerate(self.layers):
            h = layer(h, Rows(lengths, [c[i] for c in caches], batch and batch[i], rows,
                              positions))
        return self.norm(h)


class Gemma3ForCausalLM(nn.Module):
    """Text model plus the (tied) output head: `model(input_ids)` -> logits [B, L, vocab]."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.config = cfg
        self.model = TextModel(cfg)
        if not cfg.tie_word_embeddings:
            self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    def __call__(
        self,
        input_ids: mx.array | None,
        cache: list[Cache] | None = None,
        input_embeddings: mx.array | None = None,
    ) -> mx.array:
        return self.logits(self.model(input_ids, cache, input_embeddings))

    def logits(self, h: mx.array) -> mx.array:
        """Output head over final hidden states h [B, L, hidden]."""
        if self.config.tie_word_embeddings:
            out = self.model.embed_tokens.as_linear(h)
        else:
            out = self.lm_head(h)
        cap = self.config.final_logit_softcapping
        if cap is not None:
            out = mx.tanh(out / cap) * cap
        return out

    def make_cache(self, kv_bits: int | None = None, slack: int = 0) -> list[Cache]:
        """One cache per layer: a ring of window + slack slots for sliding layers.

        `kv_bits` (8 or 4) stores keys and values quantized; `slack` lets the caches roll
        back that many tokens.
        """
        cfg = self.config
        return [
            RotatingKVCache(cfg.sliding_window, slack, kv_bits) if cfg.is_sliding(i)
            else KVCache(kv_bits)
            for i in range(cfg.num_hidden_layers)
        ]

    @property
    def layers(self) -> list[DecoderLayer]:
        return self.model.layers

    def sanitize(self, weights: dict[str, Any]) -> dict[str, Any]:
        """Map any known checkpoint layout onto this module's names; idempotent."""
        out = {}
        for key, value in weights.items():
            name = text_key(key)
            if name is None or (name.startswith("lm_head.") and self.config.tie_word_embeddings):
                continue
            out[name] = value
        return out


def text_key(key: str) -> str | None:
    """This module's name for a checkpoint key (None for vision and rotary buffers)."""
    if key.startswith(("vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                       "model.multi_modal_projector.")) or "rotary_emb" in key:
        return None
    for prefix, repl in _PREFIXES:
        if key.startswith(prefix):
            return repl + key[len(prefix):]
    return key
