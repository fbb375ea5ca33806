"""Config parsing: both transformers formats, layer types, RoPE, sizes, bad input."""

from __future__ import annotations

import json

import pytest

from gemma_mlx.config import FULL, SLIDING, ModelConfig, TextConfig
from gemma_mlx.errors import GemmaError

from .conftest import FIXTURES, TEXT_CASES

# The released configs as published (text part; the multimodal ones are sparse on purpose).
RELEASED = {
    "270m": {"model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048,
             "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
             "head_dim": 256, "sliding_window": 512, "max_position_embeddings": 32768,
             "vocab_size": 262144, "query_pre_attn_scalar": 256, "rope_theta": 1000000.0,
             "rope_local_base_freq": 10000.0, "rope_scaling": None,
             "_sliding_window_pattern": 6,
             "layer_types": [FULL if (i + 1) % 6 == 0 else SLIDING for i in range(18)]},
    "1b": {"model_type": "gemma3_text", "hidden_size": 1152, "intermediate_size": 6912,
           "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1,
           "head_dim": 256, "query_pre_attn_scalar": 256, "rope_local_base_freq": 10000,
           "rope_scaling": None, "rope_theta": 1000000, "sliding_window": 512,
           "sliding_window_pattern": 6, "vocab_size": 262144, "max_position_embeddings": 32768},
    "4b": {"model_type": "gemma3", "text_config": {
        "hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
        "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "sliding_window": 1024}},
    "12b": {"model_type": "gemma3", "text_config": {
        "hidden_size": 3840, "intermediate_size": 15360, "model_type": "gemma3_text",
        "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}},
    "27b": {"model_type": "gemma3", "text_config": {
        "head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504,
        "model_type": "gemma3_text", "num_attention_heads": 32, "num_hidden_layers": 62,
        "num_key_value_heads": 16, "query_pre_attn_scalar": 168,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}},
}
# size: layers, heads, kv heads, head_dim, qpas, window, vocab, global scaling, global layers
EXPECTED = {
    "270m": (18, 4, 1, 256, 256, 512, 262144, 1.0, 3),
    "1b": (26, 4, 1, 256, 256, 512, 262144, 1.0, 4),
    "4b": (34, 8, 4, 256, 256, 1024, 262208, 8.0, 5),
    "12b": (48, 16, 8, 256, 256, 1024, 262208, 8.0, 8),
    "27b": (62, 32, 16, 128, 168, 1024, 262208, 8.0, 10),
}


@pytest.mark.parametrize("size", list(RELEASED))
def test_released_sizes(size):
    t = ModelConfig.from_dict(RELEASED[size]).text
    layers, heads, kv, hd, qpas, window, vocab, factor, n_global = EXPECTED[size]
    assert t.num_hidden_layers == layers
    assert (t.num_attention_heads, t.num_key_value_heads) == (heads, kv)
    assert (t.head_dim, t.query_pre_attn_scalar, t.sliding_window) == (hd, qpas, window)
    assert t.vocab_size == vocab
    full = [i for i, k in enumerate(t.layer_types) if k == FULL]
    assert full == [i for i in range(layers) if (i + 1) % 6 == 0] and len(full) == n_global
    assert (t.rope[FULL].rope_theta, t.rope[FULL].factor) == (1e6, factor)
    assert (t.rope[SLIDING].rope_theta, t.rope[SLIDING].factor) == (1e4, 1.0)


@pytest.mark.parametrize("case", TEXT_CASES)
def test_v4_and_v5_formats_agree(case):
    v5 = ModelConfig.from_file(FIXTURES / "text" / case / "config.json").text
    v4 = ModelConfig.from_file(FIXTURES / "text" / case / "config_v4.json").text
    assert v4 == v5


def test_v5_rope_parameters_keep_linear_scaling():
    t = ModelConfig.from_file(FIXTURES / "text" / "rope_linear" / "config.json").text
    assert "rope_parameters" in json.loads((FIXTURES / "text/rope_linear/config.json").read_text())
    assert t.rope[FULL].factor == 8.0 and t.rope[SLIDING].factor == 1.0


def test_layer_types_win_over_pattern():
    d = json.loads((FIXTURES / "text" / "layer_types" / "config_v4.json").read_text())
    assert d["sliding_window_pattern"] == 6  # misleading on purpose
    t = TextConfig.from_dict(d)
    assert t.layer_types == tuple(d["layer_types"])
    assert t.layer_types[1] == FULL


def test_unknown_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(GemmaError, match="model_type 'llama'"):
        ModelConfig.from_file(tmp_path / "config.json")


def test_missing_keys_are_named():
    with pytest.raises(GemmaError, match="num_hidden_layers"):
        ModelConfig.from_dict({"model_type": "gemma3_text", "hidden_size": 8,
                               "intermediate_size": 16}, "x/config.json")


def test_unsupported_rope_type():
    with pytest.raises(GemmaError, match="rope_type 'yarn'"):
        TextConfig.from_dict({**RELEASED["1b"], "rope_scaling": {"rope_type": "yarn",
                                                                "factor": 2}})
