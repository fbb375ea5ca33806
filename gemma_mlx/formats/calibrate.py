"""GPTQ: each decoder matrix rounded against its calibration activations, a layer at a time."""

from __future__ import annotations

import re

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from tqdm import tqdm

from ..config import ModelConfig
from ..errors import GemmaError
from ..models.layers import RMSNorm
from ..models.text import DecoderLayer
from .calibration_text import CALIBRATION_TEXTS
from .gguf_quants import pack_bits
from .quantize import Planned, Policy, Spec, _grid, quantizable, quantize_planned

SEQ_LEN = 256  # calibration rows: one full attention span at least for every sliding layer
BATCH = 4  # rows per forward while collecting activations
DAMP = 0.01  # of the mean Hessian diagonal, as in the GPTQ paper: keeps H invertible
_LAYER = re.compile(r"^(.*?)layers\.(\d+)\.(.+)$")


def calibration_ids(tokenizer, seq_len: int = SEQ_LEN) -> mx.array:
    """The built-in calibration texts as rows [n, seq_len] of token ids: each language
    encoded on its own (with <bos>), all of them joined and cut into whole rows."""
    ids: list[int] = []
    for text in CALIBRATION_TEXTS.values():
        ids += tokenizer.encode(text)
    n = len(ids) // seq_len
    if n == 0:
        raise GemmaError("the calibration text is shorter than one row")
    return mx.array(ids[: n * seq_len]).reshape(n, seq_len)


def calibration_summary() -> str:
    """Which text the calibration used, for the user to see that it is not the eval text."""
    names = [k for k in CALIBRATION_TEXTS if k not in ("Code", "Math")]
    return (f"Calibrated (GPTQ) on the built-in calibration text "
            f"(gemma_mlx/formats/calibration_text.py): {len(names)} languages "
            f"({', '.join(names)}), code and math; none of it is in the held-out texts.")


def hessian_factor(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From the inputs' h = sum x xᵀ [in, in]: the upper Cholesky factor of the damped H⁻¹
    (row k holds how column k's rounding error moves the later columns), and the mask of
    inputs that never fire (their weights do not matter and are zeroed)."""
    h = np.array(h, dtype=np.float64)
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h[np.diag_indices(h.shape[0])] += DAMP * np.mean(np.diag(h))
    return np.linalg.cholesky(np.linalg.inv(h)).T.astype(np.float32), dead


def gptq(w: np.ndarray, factor: tuple[np.ndarray, np.ndarray], spec: Spec, dtype: mx.Dtype
         ) -> tuple[np.ndarray, mx.array, mx.array]:
    """GPTQ (Frantar et al., 2022) with MLX's affine groups: columns rounded in order, each
    one's error spread over the columns not yet rounded through the inverse Hessian of the
    inputs (`factor`, from hessian_factor). Each group's grid is the least-squares search of
    quantize.py, taken on the group's weights as updated when the group is reached, with the
    scale and bias rounded to `dtype` first so the levels match the stored grid.

    Returns packed levels [out, in * bits / 32] and scales, biases [out, in / group] (dtype)."""
    out, cols = w.shape
    gs, levels = spec.group_size, 2**spec.bits - 1
    if cols % gs:
        raise GemmaError(f"an input width of {cols} is not a multiple of the group size {gs}")
    u, dead = factor
    # Columns as rows, so each column GPTQ visits is contiguous in memory.
    wt = np.array(w, dtype=np.float32).T.copy()
    wt[dead] = 0.0
    qt = np.empty((cols, out), np.uint8)
    scales, biases = [], []
    for i in range(0, cols, gs):
        j = i + gs
        _, s, b = _grid(mx.array(wt[i:j].T), spec)
        s, b = s.astype(dtype), b.astype(dtype)
        scales.append(s)
        biases.append(b)
        s32 = np.array(s.astype(mx.float32))[:, 0]
        b32 = np.array(b.astype(mx.float32))[:, 0]
        s32 = np.where(s32 == 0, 1.0, s32)
        err = np.empty((gs, out), np.float32)
        for k in range(i, j):
            col = wt[k]
            lv = np.clip(np.rint((col - b32) / s32), 0, levels)
            qt[k] = lv
            e = (col - (lv * s32 + b32)) / u[k, k]
            err[k - i] = e
            if k + 1 < j:
                wt[k + 1 : j] -= u[k, k + 1 : j, None] * e[None, :]
        if j < cols:
            wt[j:] -= u[i:j, j:].T @ err
    q = qt.T
    return (pack_bits(q, spec.bits), mx.concatenate(scales, axis=1),
            mx.concatenate(biases, axis=1))


class _Catcher(nn.Module):
    """A linear layer that adds its inputs' xᵀx to a running Hessian as it runs."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.h = mx.zeros((inner.weight.shape[1],) * 2, mx.float32)

    def __call__(self, x: mx.array) -> mx.array:
        flat = x.reshape(-1, x.shape[-1]).astype(mx.float32)
        self.h = self.h + flat.T @ flat
        return self.inner(x)


def _linears(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(k, m) for k, m in module.named_modules() if isinstance(m, nn.Linear)]


def _set(module: nn.Module, dotted: str, value: nn.Module) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        module = getattr(module, p)
    setattr(module, last, value)


def _quantized_linear(path: str, w: mx.array, factor: tuple[np.ndarray, np.ndarray],
                      spec: Spec) -> tuple[nn.Linear, dict[str, mx.array]]:
    """GPTQ's triplet for `path`, and a float layer holding its dequantized weights: the same
    outputs as a QuantizedLinear, without MLX's scalar CPU kernel for 3-, 5- and 6-bit."""
    try:
        packed, s, b = gptq(np.array(w.astype(mx.float32)), factor, spec, w.dtype)
    except GemmaError as e:
        raise GemmaError(f"{path}: {e}") from None
    arrays = {f"{path}.weight": mx.array(packed), f"{path}.scales": s, f"{path}.biases": b}
    layer = nn.Linear(w.shape[1], w.shape[0], bias=False)
    layer.weight = mx.dequantize(arrays[f"{path}.weight"], s, b, spec.group_size,
                                 spec.bits).astype(mx.float32)
    return layer, arrays


def quantize_calibrated(config: ModelConfig, weights: dict[str, mx.array], policy: Policy,
                        tokenizer, progress: bool = True, gptq_head: bool = True) -> Planned:
    """Yield (name, array, spec) for every tensor of a float text checkpoint, the decoder's
    matrices quantized by GPTQ on the built-in calibration text: (name, weight, None) for
    tensors kept as they are, and the quantized triplet's arrays with their Spec.

    `weights` is consumed (entries are popped as they are written) so a lazily loaded
    checkpoint is read one layer at a time; the float embedding is kept to the end, since the
    tied output head is quantized last against the final hidden states."""
    tc = config.text
    names = {}
    for name in weights:
        m = _LAYER.match(name)
        if m and "vision" not in name:
            names.setdefault(int(m.group(2)), {})[m.group(3)] = name
    embed_name = next((n for n in weights if n.endswith("embed_tokens.weight")
                       and "vision" not in n), None)
    if embed_name is None or len(names) != tc.num_hidden_layers:
        raise GemmaError("calibrated quantization needs the text decoder's embedding and all "
                         f"{tc.num_hidden_layers} layers in the checkpoint")
    prefix = embed_name[: -len("embed_tokens.weight")]
    embed = weights.pop(embed_name)
    ids = calibration_ids(tokenizer)
    scale = mx.array(tc.hidden_size**0.5, mx.float32)
    hidden = [embed[ids[r : r + BATCH]].astype(mx.float32) * scale
              for r in range(0, ids.shape[0], BATCH)]
    mx.eval(hidden)
    bar = tqdm(total=tc.num_hidden_layers + 1, desc="Calibrating (GPTQ)", unit="layer",
               disable=not progress)
    for i in range(tc.num_hidden_layers):
        layer = DecoderLayer(tc, i)
        own = {short: weights.pop(full) for short, full in names[i].items()}
        layer.load_weights([(k, v.astype(mx.float32)) for k, v in own.items()], strict=True)
        catchers = []
        for k, lin in _linears(layer):
            path = f"{prefix}layers.{i}.{k}"
            spec = policy(path) if quantizable(path, lin.weight.shape) else None
            if spec is not None:
                c = _Catcher(lin)
                _set(layer, k, c)
                catchers.append((k, path, c, own[f"{k}.weight"], spec))
        for x in hidden:
            mx.eval(layer(x, None), [c.h for *_, c, _, _ in catchers])
        factors: list[tuple[np.ndarray, tuple]] = []  # q, k, v (and gate, up) share inputs
        for k, path, c, w, spec in catchers:
            h = np.array(c.h)
            factor = next((f for seen, f in factors if np.array_equal(seen, h)), None)
            if factor is None:
                factor = hessian_factor(h)
                factors.append((h, factor))
            qlayer, arrays = _quantized_linear(path, w, factor, spec)
            _set(layer, k, qlayer)
            for n, a in arrays.items():
                yield n, a, spec
            del own[f"{k}.weight"]
        for k, v in own.items():
            yield f"{prefix}layers.{i}.{k}", v, None
        hidden = [layer(x, None) for x in hidden]  # the next layer sees the quantized ones'
        mx.eval(hidden)
        bar.update()
    # The tied head: its Hessian is that of the final normed hidden states.
    norm_name = f"{prefix}norm.weight"
    norm = weights.pop(norm_name)
    rms = RMSNorm(tc.hidden_size, tc.rms_norm_eps)
    rms.weight = norm.astype(mx.float32)
    h = mx.zeros((tc.hidden_size, tc.hidden_size), mx.float32)
    for x in hidden:
        f = rms(x).reshape(-1, tc.hidden_size)  # what the head's matmul sees
        h = h + f.T @ f
        mx.eval(h)
    yield norm_name, norm, None
    head_name = next((n for n in weights if n.endswith("lm_head.weight")), None)
    head = embed if tc.tie_word_embeddings else weights.pop(head_name, None)
    if not tc.tie_word_embeddings:
        yield from quantize_planned(embed_name, embed, policy)
    if head is not None:
        name = embed_name if tc.tie_word_embeddings else head_name
        base = name[: -len(".weight")]
        spec = policy(base)
        if spec is None or not gptq_head:
            yield from quantize_planned(name, head, policy)
        else:
            _, arrays = _quantized_linear(base, head, hessian_factor(np.array(h)), spec)
            for n, a in arrays.items():
                yield n, a, spec
    bar.update()
    bar.close()
    for name in list(weights):  # the vision tower, the projector and anything else
        yield from quantize_planned(name, weights.pop(name), policy)

