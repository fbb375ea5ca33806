"""LoRA training memory for the preflight: activations, loss chunks, adapters and Adam state."""

from __future__ import annotations

from ..config import TextConfig
from .memory_sizes import dense_layer_bytes, on_cpu


def _layer_activation_bytes(cfg: TextConfig, layer: int, batch: int, seq: int,
                            act_bytes: int) -> int:
    """What one decoder layer keeps for its backward pass, for batch x seq tokens.

    Per token, counted from the layer's ops (models.text DecoderLayer) and checked on the
    270M's shape (5-15% above the measured peaks for 128 to 2,048 tokens):
    - 12 hidden-sized arrays: the residual input, four RMSNorms' inputs and outputs (their
      backward needs both), two residual sums, the attention and MLP outputs;
    - 5 intermediate-sized: gate, up, GELU(gate), their product, the down projection's input;
    - 5 per projection of q, k and v (q+2kv wide): the outputs, q/k norms in and out, RoPE;
    - attention scores, float32, twice (scores and probabilities) per query head over the
      keys a query sees at once in kernels.local_attention: all of them up to the window
      (dense), then 2W on a sliding layer (banded blocks); on a global layer all up to
      1,024 queries, then about half the sequence plus a 1,024-key block (blocked causal).
    """
    d, m = cfg.hidden_size, cfg.intermediate_size
    qkv = (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * cfg.head_dim
    w = cfg.sliding_window
    if cfg.is_sliding(layer):
        keys = seq if seq <= w else 2 * w
    else:
        keys = seq if seq <= 1024 else (seq + 1024) // 2
    per_token = act_bytes * (12 * d + 5 * m + 5 * qkv) + 2 * 4 * cfg.num_attention_heads * keys
    return batch * seq * per_token


def lora_parameter_count(cfg: TextConfig, num_layers: int, rank: int,
                         targets: tuple[str, ...]) -> int:
    """Trainable parameters of the adapters (lora.layers apply_lora): rank x (in + out)."""
    d, m = cfg.hidden_size, cfg.intermediate_size
    q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    dims = {"self_attn.q_proj": (d, q), "self_attn.k_proj": (d, kv), "self_attn.v_proj": (d, kv),
            "self_attn.o_proj": (q, d), "mlp.gate_proj": (d, m), "mlp.up_proj": (d, m),
            "mlp.down_proj": (m, d)}
    n = cfg.num_hidden_layers if num_layers <= 0 else min(num_layers, cfg.num_hidden_layers)
    return n * sum(rank * sum(dims[t]) for t in targets if t in dims)


def _loss_chunks(chunks: int, train: bool, grad_checkpoint: bool) -> int:
    """How many [128 x vocab] float32 logit chunks of the loss (lora.loss) are alive at once:
    MLX evaluates several before freeing them. Measured on the CPU: 3 for one chunk, then up
    to 8 in training, 5 with checkpointing or forward only (its evaluation order decides)."""
    if not train:
        return min(chunks, 5)
    return 3 if chunks == 1 else min(4 + chunks, 5 if grad_checkpoint else 8)


def lora_bytes(cfg: TextConfig, *, batch: int, seq: int, num_layers: int, rank: int,
               targets: tuple[str, ...], grad_checkpoint: bool = False, act_bytes: int = 4,
               quantized: bool = False, train: bool = True) -> list[tuple[str, int]]:
    """The named parts of a LoRA run's memory beyond the weights (lora.trainer, lora.loss).

    The backward pass goes through the adapted (last `num_layers`) layers only: they keep
    their activations and, on the CPU, the float32 copies of their quantized projections
    that the matmuls' backward reads. With --grad-checkpoint they keep only their inputs;
    one layer at a time is recomputed (its arrays and their gradients, about twice one
    layer) after the loss's backward, so the larger of the two counts. A quantized head is
    used in float32 (dequantized once when tied, per chunk otherwise). Adapters: weights,
    gradients and Adam's two moments, float32 (16 bytes per parameter).
    """
    n = cfg.num_hidden_layers if num_layers <= 0 else min(num_layers, cfg.num_hidden_layers)
    layers = [_layer_activation_bytes(cfg, i, batch, seq, act_bytes)
              for i in range(cfg.num_hidden_layers - n, cfg.num_hidden_layers)]
    tokens, one = batch * seq, max(layers, default=0)
    dense = dense_layer_bytes(cfg) if quantized and on_cpu() else 0
    loss = _loss_chunks(-(-tokens // 128), train, grad_checkpoint) * min(tokens, 128) * (
        cfg.vocab_size * 4)
    label = "loss chunks"
    # embeddings, final norm, gathered rows; the frozen layers' forward as in a prefill
    acts = 4 * tokens * cfg.hidden_size * act_bytes + 3 * dense
    if not train:  # evaluation: forward only, one layer's arrays at a time
        acts += one // 2 + dense
    elif grad_checkpoint:
        acts += n * tokens * cfg.hidden_size * act_bytes
        if 2 * one + dense > loss:
            loss, label = 2 * one + dense, "one layer recomputed"
    else:  # every adapted layer's arrays are alive during the loss's backward
        acts += sum(layers) + n * dense
    parts = [(f"activations for {batch} x {seq:,} tokens", acts), (label, loss)]
    if quantized:
        parts.append(("float32 output head", cfg.vocab_size * cfg.hidden_size * 4))
    if train:
        parts.append(("adapters, gradients and Adam state",
                      16 * lora_parameter_count(cfg, num_layers, rank, targets)))
    return parts
