"""Crafted files get one clear error before anything big is allocated: GGUF, safetensors,
configs and tokenizer files (the fuzzers in test_fuzz.py search around these)."""

from __future__ import annotations

import json
import struct
import tracemalloc

import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.formats import gguf_file
from gemma_mlx.formats.gguf_file import read_header
from gemma_mlx.formats.loading import load

from .fuzzing import FIXTURES, tiny_gguf


def _gguf(kvs: bytes = b"", n_kv: int = 0, tensors: bytes = b"", n_t: int = 0,
          tail: bytes = b"\0" * 64) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_t, n_kv) + kvs + tensors + tail


def _string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def _refused_small(path, match: str) -> None:
    """read_header refuses, allocating under 1 MB on the way."""
    gguf_file._tensor_types()  # importing gguf's tables is not the file's doing
    tracemalloc.start()
    try:
        with pytest.raises(GemmaError, match=match):
            read_header(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak:,} bytes allocated to refuse it"


def test_gguf_tensor_of_2_to_60_elements_is_refused_at_once(tmp_path):
    info = _string(b"token_embd.weight") + struct.pack("<I", 2) + struct.pack("<QQ", 2**30, 2**30)
    info += struct.pack("<IQ", 0, 0)
    path = tmp_path / "big.gguf"
    path.write_bytes(_gguf(tensors=info, n_t=1))
    _refused_small(path, "over 17,592,186,044,416 elements")


def test_gguf_string_of_2_to_40_bytes_is_refused_at_once(tmp_path):
    kv = _string(b"general.name") + struct.pack("<I", 8) + struct.pack("<Q", 2**40) + b"abc"
    path = tmp_path / "s.gguf"
    path.write_bytes(_gguf(kv, 1))
    _refused_small(path, "declares 1,099,511,627,776 bytes")


@pytest.mark.parametrize("kvs,n_kv,n_t,match", [
    (b"", 2**62, 0, "more than the file can hold"),
    (b"", 0, 2**40, "more than the file can hold"),
    (_string(b"a") + struct.pack("<IIQ", 9, 4, 2**61), 1, 0, "more than the file can hold"),
    (_string(b"a") + struct.pack("<IIQ", 9, 8, 2**50), 1, 0, "more than the file can hold"),
    (_string(b"a") + struct.pack("<I", 77), 1, 0, "unknown value type"),
    (_string(b"a") + struct.pack("<IB", 7, 5), 1, 0, "neither 0 nor 1"),
    (_string(b"a") + struct.pack("<II", 9, 9) + struct.pack("<Q", 1)
     + struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 9, 1), 1, 0, "nested deeper"),
    (_string(b"general.alignment") + struct.pack("<II", 4, 3), 1, 0, "power of two"),
    (_string(b"a") + struct.pack("<IB", 0, 1) + _string(b"a") + struct.pack("<IB", 0, 1), 2, 0,
     "appears twice"),
])
def test_gguf_lying_metadata_is_refused(tmp_path, kvs, n_kv, n_t, match):
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf(kvs, n_kv, n_t=n_t))
    _refused_small(path, match)


@pytest.mark.parametrize("dims,kind,offset,match", [
    ([], 0, 0, "dimensions"), ([1, 1, 1, 1, 1], 0, 0, "dimensions"), ([0], 0, 0, "empty"),
    ([4], 99, 0, "unknown type"), ([33], 8, 0, "not whole Q8_0 blocks"),
    ([4], 0, 3, "not aligned"), ([4], 0, 2**63, "past the end"),
])
def test_gguf_lying_tensor_entries_are_refused(tmp_path, dims, kind, offset, match):
    info = _string(b"t") + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d)
                                                                   for d in dims)
    path = tmp_path / "t.gguf"
    path.write_bytes(_gguf(tensors=info + struct.pack("<IQ", kind, offset), n_t=1))
    _refused_small(path, match)


def test_gguf_overlapping_tensors_and_big_endian_files(tmp_path):
    one = struct.pack("<I", 1) + struct.pack("<Q", 8) + struct.pack("<IQ", 0, 0)
    path = tmp_path / "o.gguf"
    path.write_bytes(_gguf(tensors=_string(b"a") + one + _string(b"b") + one, n_t=2))
    _refused_small(path, "overlap")
    path.write_bytes(b"GGUF" + struct.pack(">IQQ", 3, 0, 0) + b"\0" * 32)
    _refused_small(path, "big-endian")


def _sections(data: bytes) -> list[int]:
    """Byte offsets where each GGUF section and entry of `data` starts."""
    c = gguf_file._Cursor(data, "seed")
    marks = [0, 4, 8, 16]
    c.take(24, "head")
    n_t, n_kv = struct.unpack("<QQ", data[8:24])
    marks.append(24)
    for _ in range(n_kv):
        key = c.string("key")
        gguf_file._value(c, c.scalar("I", "type"), key)
        marks.append(c.pos)
    for _ in range(n_t):
        c.string("name")
        c.take(8 * c.scalar("I", "dims") + 12, "rest")
        marks.append(c.pos)
    data_start = min(t.offset for t in read_header_bytes(data).tensors)
    return sorted(set(marks + [data_start, data_start + 1, len(data) - 1]))


def read_header_bytes(data: bytes):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(data)
        f.flush()
        return read_header(f.name)


def test_gguf_truncated_at_every_section_gets_one_clear_error(tmp_path):
    seed = tiny_gguf()
    marks = _sections(seed)
    assert len(marks) > 40  # header fields, every metadata entry, every tensor entry, data
    path = tmp_path / "cut.gguf"
    for cut in marks:
        for n in {max(cut - 1, 0), cut, cut + 1} - {len(seed)}:
            path.write_bytes(seed[:n])
            with pytest.raises(GemmaError, match="cut.gguf"):
                load(path)


def _safetensors(header: dict | bytes, data: bytes = b"\0" * 16) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _checkpoint(tmp_path, weights: bytes, index: dict | None = None):
    d = tmp_path / "ckpt"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text((FIXTURES / "text" / "gqa" / "config.json").read_text())
    (d / "model.safetensors").write_bytes(weights)
    if index is not None:
        (d / "model.safetensors.index.json").write_text(json.dumps(index))
    return d


@pytest.mark.parametrize("weights,match", [
    (struct.pack("<Q", 2**62) + b"{}", "header of"),
    (_safetensors(b"[1, 2]"), "not a JSON object"),
    (_safetensors(b"{" * 5000), "not valid JSON"),
    (_safetensors({"a": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}), "dtype"),
    (_safetensors({"a": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 16]}}), "needs"),
    (_safetensors({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}),
     "is the file complete"),
    (_safetensors({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}), "shape"),
    (_safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}), "overlap"),
    (_safetensors({"__metadata__": {"a": 1}}), "__metadata__"),
])
def test_safetensors_headers_are_checked_before_mlx_reads_them(tmp_path, weights, match):
    with pytest.raises(GemmaError, match=match):
        load(_checkpoint(tmp_path, weights))


@pytest.mark.parametrize("index,match", [
    ({"weight_map": {"a": "../../etc/passwd"}}, "not a file name"),
    ({"weight_map": {"a": "/etc/passwd"}}, "not a file name"),
    ({"weight_map": None}, "weight_map"),
    ([1], "weight_map"),
])
def test_safetensors_index_names_only_files_beside_it(tmp_path, index, match):
    weights = (FIXTURES / "text" / "gqa" / "model.safetensors").read_bytes()
    with pytest.raises(GemmaError, match=match):
        load(_checkpoint(tmp_path, weights, index))


@pytest.mark.parametrize("edit,match", [
    ({"hidden_size": -1}, "hidden_size must be an integer"),
    ({"num_hidden_layers": 10**9}, "num_hidden_layers must be an integer"),
    ({"vocab_size": "512"}, "vocab_size"),
    ({"rms_norm_eps": float("nan")}, "rms_norm_eps"),
    ({"num_key_value_heads": 3}, "multiple"),
    ({"layer_types": "sliding"}, "layer_types"),
    ({"rope_parameters": None, "rope_scaling": {"rope_type": "linear"}}, "rope factor"),
    ({"sliding_window_pattern": 0, "layer_types": None}, "sliding_window_pattern"),
    ({"quantization": {"bits": 7}}, "quantization bits"),
    ({"tie_word_embeddings": "no"}, "tie_word_embeddings"),
])
def test_config_values_are_typed_and_bounded(tmp_path, edit, match):
    config = {**json.loads((FIXTURES / "text" / "gqa" / "config.json").read_text()), **edit}
    d = _checkpoint(tmp_path, (FIXTURES / "text" / "gqa" / "model.safetensors").read_bytes())
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(GemmaError, match=match):
        load(d)


@pytest.mark.parametrize("text,match", [("[" * 100_000 + "]" * 100_000, "not valid JSON"),
                                        ("[1]", "must be an object"), ("\x80", "not valid JSON")])
def test_config_files_that_are_not_objects(tmp_path, text, match):
    d = _checkpoint(tmp_path, b"")
    (d / "config.json").write_text(text, encoding="latin-1")
    with pytest.raises(GemmaError, match=match):
        load(d)


def test_server_bodies_the_fuzzer_broke_it_with():
    """Each once answered 500, or killed the generation thread for every later request."""
    import httpx

    from .fuzzing import tiny_model
    from .serving import running_server

    with running_server(*tiny_model(), model_id="tiny") as (url, _):
        r = httpx.post(url + "/v1/chat/completions", json={"messages": [
            {"role": "system", "content": []}, {"role": "user", "content": ""}]})
        assert r.status_code == 400 and r.json()["error"]["message"]
        for seed in (2**70, -5):
            r = httpx.post(url + "/v1/completions", json={"prompt": "hi", "seed": seed,
                                                          "max_tokens": 2})
            assert r.status_code == 200, r.text
        r = httpx.post(url + "/v1/chat/completions", content="[" * 3000 + "]" * 3000,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = httpx.post(url + "/v1/completions", json={"prompt": [32768]})
        assert r.status_code == 400 and "not a token id" in r.json()["error"]["message"]
        assert httpx.get(url + "/health").status_code == 200
