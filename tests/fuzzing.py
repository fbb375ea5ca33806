"""Fuzz surfaces for hypothesis: seeds, input strategies and targets for every file and request
gemma-mlx reads. A target may succeed or raise GemmaError; anything else is a failure."""

from __future__ import annotations

import json
import resource
import signal
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from gemma_mlx.errors import GemmaError

FIXTURES = Path(__file__).parent / "fixtures"
CASE_SECONDS = 20.0  # a case running longer is a hang
GIANT_BYTES = 1 << 30  # a case raising peak memory by this much made a giant allocation


class Hang(Exception):
    """A case ran past CASE_SECONDS."""


class GiantAllocation(Exception):
    """A case raised the process's peak memory by GIANT_BYTES or more."""


def _peak_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if rss > 1 << 32 else rss * 1024  # bytes on macOS, KiB on Linux


@contextmanager
def _time_limit(seconds: float):
    def alarm(*_):
        raise Hang(f"case ran over {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- byte mutations of a valid seed ------------------------------------------------------------

INTERESTING = [0, 1, 2, 7, 8, 31, 32, 255, 256, 2**15, 2**16, 2**31 - 1, 2**31, 2**32 - 1,
               2**32, 2**40, 2**60, 2**63 - 1, 2**63, 2**64 - 1]


def _mutate(seed: bytes, ops: list[tuple[int, float, int, int]]) -> bytes:
    data = bytearray(seed)
    for kind, where, value, width in ops:
        if not data:
            break
        pos = int(where * len(data)) % len(data)
        if kind == 0:  # flip bits
            data[pos] ^= value & 0xFF or 1
        elif kind == 1:  # overwrite an integer field with a boundary value
            raw = (INTERESTING[value % len(INTERESTING)]).to_bytes(8, "little")[:width]
            data[pos : pos + width] = raw
        elif kind == 2:  # truncate
            del data[pos:]
        elif kind == 3:  # delete a span
            del data[pos : pos + width * 4]
        else:  # duplicate a span
            data[pos:pos] = data[pos : pos + width * 4]
    return bytes(data)


def mutations(seed: bytes, head: int) -> st.SearchStrategy[bytes]:
    """The seed with a few edits, most of them in its first `head` bytes (the header)."""
    where = st.one_of(st.floats(0, head / len(seed), exclude_max=True),
                      st.floats(0, 1, exclude_max=True))
    op = st.tuples(st.integers(0, 4), where, st.integers(0, 255), st.sampled_from([1, 2, 4, 8]))
    return st.lists(op, min_size=1, max_size=6).map(lambda ops: _mutate(seed, ops))


def json_values(leaf_strings: list[str] | None = None) -> st.SearchStrategy[Any]:
    """Any JSON value, with boundary numbers and the given strings among the leaves."""
    leaves = st.one_of(
        st.none(), st.booleans(), st.sampled_from(INTERESTING + [-1, -(2**63), 10**30]),
        st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40), st.sampled_from(leaf_strings or [""]))
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=5)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)


# -- a tiny Gemma 3 with a byte-fallback vocabulary ------------------------------------------

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
WORDS = ["\u2581the", "\u2581a", "\u2581user", "\u2581model", "\u2581Hi", "\u2581\u2581", "he",
         "ll", "o"]
TINY = {"hidden": 32, "layers": 2, "heads": 2, "kv_heads": 1, "head_dim": 16, "ffn": 64}


def tiny_vocab() -> dict[str, Any]:
    tokens = SPECIALS + [f"<0x{i:02X}>" for i in range(256)] + ["\u2581"] + WORDS
    types = [3] * len(SPECIALS) + [6] * 256 + [1] * (1 + len(WORDS))
    scores = [0.0] * (len(SPECIALS) + 256) + [-float(i) for i in range(1 + len(WORDS))]
    return {"model": "llama", "tokens": tokens, "scores": scores, "types": types,
            "bos_token_id": 2, "eos_token_id": 1, "unknown_token_id": 3,
            "add_space_prefix": False, "chat_template": None}


@lru_cache(maxsize=1)
def tiny_tokenizer():
    from gemma_mlx.text.tokenizer import Tokenizer

    return Tokenizer.from_gguf_vocab(tiny_vocab())


@lru_cache(maxsize=1)
def tiny_gguf() -> bytes:
    """A valid gemma3 GGUF of the tiny model: F32, F16, Q8_0, Q4_0 and Q5_1 tensors."""
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf import quants

    v, t = tiny_vocab(), TINY
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "tiny.gguf")
        w = gguf.GGUFWriter(path, "gemma3")
        w.add_context_length(512)
        w.add_embedding_length(t["hidden"])
        w.add_block_count(t["layers"])
        w.add_feed_forward_length(t["ffn"])
        w.add_head_count(t["heads"])
        w.add_head_count_kv(t["kv_heads"])
        w.add_key_length(t["head_dim"])
        w.add_value_length(t["head_dim"])
        w.add_layer_norm_rms_eps(1e-6)
        w.add_rope_freq_base(1e6)
        w.add_sliding_window(8)
        w.add_tokenizer_model("llama")
        w.add_token_list(v["tokens"])
        w.add_token_scores(v["scores"])
        w.add_token_types(v["types"])
        w.add_bos_token_id(2)
        w.add_eos_token_id(1)
        w.add_unk_token_id(3)
        w.add_pad_token_id(0)
        w.add_chat_template((FIXTURES / "templates" / "gemma3.jinja").read_text())

        def add(name: str, shape: tuple[int, ...], kind: Q = Q.F32) -> None:
            x = (rng.standard_normal(shape) * 0.1).astype(np.float32)
            if kind == Q.F32:
                w.add_tensor(name, x)
            elif kind == Q.F16:
                w.add_tensor(name, x.astype(np.float16))
            else:
                w.add_tensor(name, quants.quantize(x, kind), raw_dtype=kind)

        h, hd, n = t["hidden"], t["head_dim"], len(v["tokens"])
        add("token_embd.weight", (n, h), Q.Q8_0)
        add("output_norm.weight", (h,))
        for i in range(t["layers"]):
            b = f"blk.{i}."
            add(b + "attn_q.weight", (t["heads"] * hd, h), Q.F16)
            add(b + "attn_k.weight", (t["kv_heads"] * hd, h), Q.Q4_0)
            add(b + "attn_v.weight", (t["kv_heads"] * hd, h), Q.Q5_1)
            add(b + "attn_output.weight", (h, t["heads"] * hd), Q.Q8_0)
            for norm in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
                add(b + norm + ".weight", (h,))
            add(b + "attn_q_norm.weight", (hd,))
            add(b + "attn_k_norm.weight", (hd,))
            add(b + "ffn_gate.weight", (t["ffn"], h), Q.Q8_0)
            add(b + "ffn_up.weight", (t["ffn"], h), Q.F16)
            add(b + "ffn_down.weight", (h, t["ffn"]), Q.Q4_0)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


@lru_cache(maxsize=1)
def tiny_model():
    """(model, tokenizer) of the tiny GGUF, for the server."""
    from gemma_mlx.formats.loading import load

    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "tiny.gguf")
        path.write_bytes(tiny_gguf())
        return load(path)


def _smoke(model: Any) -> None:
    import mlx.core as mx

    mx.eval(model(mx.array([[2, 10, 300]])))


# -- surfaces -------------------------------------------------------------------------------


@dataclass
class Surface:
    """One kind of untrusted input: a strategy for it and a target that consumes it."""

    name: str
    strategy: Callable[[], st.SearchStrategy[Any]]
    target: Callable[[Any, Path], None]  # (input, a scratch directory)


def _gguf_strategy() -> st.SearchStrategy[bytes]:
    from gguf import GGUFReader

    seed = tiny_gguf()
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(seed)
        f.flush()
        head = GGUFReader(f.name).data_offset  # where the header ends
    return st.one_of(mutations(seed, head), st.integers(0, len(seed)).map(lambda n: seed[:n]),
                     _gguf_structures())


def _gguf_structures() -> st.SearchStrategy[bytes]:
    """GGUF files built field by field, with lying counts, lengths, types, dims and offsets."""
    import struct

    count = st.sampled_from(INTERESTING) | st.integers(0, 64)
    kv = st.tuples(st.text(max_size=30), st.integers(0, 14), count, st.binary(max_size=64))
    tensor = st.tuples(st.sampled_from(["token_embd.weight", "blk.0.attn_q.weight", "output.weight",
                                        "x"]), st.lists(count, min_size=0, max_size=5),
                       st.integers(0, 45), count)

    def build(version, kvs, tensors, n_kv, n_t, tail) -> bytes:
        out = [b"GGUF", struct.pack("<IQQ", version, n_kv if n_kv is not None else len(kvs),
                                    n_t if n_t is not None else len(tensors))]
        for key, kind, n, payload in kvs:
            k = key.encode()
            out += [struct.pack("<Q", len(k)), k, struct.pack("<I", kind)]
            if kind in (8, 9):
                out.append(struct.pack("<Q", n) if kind == 8 else struct.pack("<IQ", 8, n))
            out.append(payload)
        for name, dims, kind, offset in tensors:
            k = name.encode()
            out += [struct.pack("<Q", len(k)), k, struct.pack("<I", len(dims))]
            out += [struct.pack("<Q", d % 2**64) for d in dims]
            out.append(struct.pack("<IQ", kind, offset % 2**64))
        return b"".join(out) + tail

    return st.builds(build, st.sampled_from([1, 2, 3, 2**24, 3 << 24]),
                     st.lists(kv, max_size=6), st.lists(tensor, max_size=4),
                     st.none() | count, st.none() | count, st.binary(max_size=512))


def _gguf_target(data: bytes, scratch: Path) -> None:
    from gemma_mlx.formats.loading import load

    path = scratch / "model.gguf"
    path.write_bytes(data)
    model, tokenizer = load(path)
    _smoke(model)
    if tokenizer is not None:
        tokenizer.decode(tokenizer.encode("Hi the user"))


def _tiny_dir(scratch: Path) -> Path:
    """A directory with the gqa fixture's weights linked in (config written by the target)."""
    d = scratch / "ckpt"
    d.mkdir(exist_ok=True)
    link = d / "model.safetensors"
    if not link.exists():
        link.symlink_to(FIXTURES / "text" / "gqa" / "model.safetensors")
    return d


def _safetensors_seed() -> bytes:
    return (FIXTURES / "text" / "gqa" / "model.safetensors").read_bytes()


def _safetensors_strategy() -> st.SearchStrategy[Any]:
    seed = _safetensors_seed()
    head = 8 + int.from_bytes(seed[:8], "little")
    header = json.loads(seed[8:head])
    names = [k for k in header if k != "__metadata__"]

    def with_header(entries: dict, tail: bytes) -> bytes:
        raw = json.dumps(entries).encode()
        return len(raw).to_bytes(8, "little") + raw + tail

    entry = st.fixed_dictionaries({
        "dtype": st.sampled_from(["F32", "F16", "BF16", "U32", "I8", "F64", "BOOL", "X", ""]),
        "shape": st.lists(st.sampled_from(INTERESTING) | st.integers(-3, 64), max_size=4),
        "data_offsets": st.lists(st.sampled_from(INTERESTING) | st.integers(-3, 4096),
                                 max_size=3)})
    headers = st.builds(with_header, st.dictionaries(st.sampled_from(names + ["x"]),
                                                     entry | json_values(), max_size=4),
                        st.binary(max_size=4096))
    index = st.dictionaries(st.sampled_from(["weight_map", "metadata"]),
                            st.dictionaries(st.sampled_from(names[:3] + ["x"]), st.sampled_from(
                                ["model.safetensors", "../model.safetensors", "/etc/passwd",
                                 "missing.safetensors", "", "."]) | json_values()) | json_values())
    return st.one_of(mutations(seed, head), headers, st.tuples(st.just("index"), index))


def _safetensors_target(data: Any, scratch: Path) -> None:
    from gemma_mlx.formats.loading import load

    d = scratch / "st"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text((FIXTURES / "text" / "gqa" / "config.json").read_text())
    if isinstance(data, tuple):  # an index beside the good shard
        (d / "model.safetensors").write_bytes(_safetensors_seed())
        (d / "model.safetensors.index.json").write_text(json.dumps(data[1]))
    else:
        (d / "model.safetensors").write_bytes(data)
        (d / "model.safetensors.index.json").unlink(missing_ok=True)
    model, _ = load(d)
    _smoke(model)


def _config_strategy() -> st.SearchStrategy[Any]:
    base = json.loads((FIXTURES / "text" / "gqa" / "config.json").read_text())
    keys = sorted(base) + ["text_config", "vision_config", "quantization", "rope_scaling",
                           "sliding_window_pattern", "model_type"]
    edits = st.dictionaries(st.sampled_from(keys), json_values(
        ["gemma3", "gemma3_text", "linear", "default", "sliding_attention", "full_attention"])
        | st.just(None), min_size=1, max_size=4)
    deep = st.integers(1, 100_000).map(lambda n: "[" * n + "]" * n)
    raw = st.binary(max_size=256).map(lambda b: b.decode("latin-1"))
    return st.one_of(edits.map(lambda e: json.dumps({**base, **e})), deep, raw,
                     mutations(json.dumps(base).encode(), 2000).map(
                         lambda b: b.decode("latin-1")))


def _config_target(text: str, scratch: Path) -> None:
    from gemma_mlx.formats.loading import load

    d = _tiny_dir(scratch)
    (d / "config.json").write_text(text, encoding="latin-1")
    model, _ = load(d)
    _smoke(model)


def _tokenizer_strategy() -> st.SearchStrategy[Any]:
    proto = tiny_tokenizer()._proto
    template = (FIXTURES / "templates" / "gemma3.jinja").read_text()
    config = st.dictionaries(st.sampled_from(["chat_template", "bos_token", "eos_token"]),
                             json_values([template, "{{ messages }}", "{% for %}"]), max_size=3)
    return st.one_of(
        st.tuples(st.just("tokenizer.model"), mutations(proto, len(proto))),
        st.tuples(st.just("tokenizer.json"), st.builds(json.dumps, json_values()).map(str.encode)),
        st.tuples(st.just("tokenizer_config.json"), st.builds(json.dumps, config).map(str.encode)),
        st.tuples(st.just("chat_template.json"), st.builds(json.dumps, config).map(str.encode)),
        st.tuples(st.just("chat_template.jinja"), st.binary(max_size=200)))


def _tokenizer_target(data: tuple[str, bytes], scratch: Path) -> None:
    from gemma_mlx.text.tokenizer import Tokenizer

    name, raw = data
    d = scratch / "tok"
    if d.exists():
        for f in d.iterdir():
            f.unlink()
    d.mkdir(exist_ok=True)
    if name != "tokenizer.model":
        (d / "tokenizer.model").write_bytes(tiny_tokenizer()._proto)
    (d / name).write_bytes(raw)
    tok = Tokenizer.from_dir(d)
    if tok is not None:
        tok.decode(tok.encode("Hi <start_of_turn> the"))
        tok.apply_chat_template([{"role": "user", "content": "Hi"}])


_EXPRESSIONS = [
    "messages", "messages[0]['content']", "''.__class__.__mro__[1].__subclasses__()",
    "cycler.__init__.__globals__", "joiner.__init__.__globals__.os", "namespace.__init__",
    "self._TemplateReference__context", "lipsum.__globals__", "range(10**9)|list",
    "'a' * 10**9", "[0] * 10**9", "10 ** (10 ** 8)", "'%999999999s' % 1", "'x'|center(10**9)",
    "'x'|indent(10**9)", "'{:>999999999}'.format(1)", "'x'|wordwrap(10**9)", "messages|tojson",
    "raise_exception('no')", "strftime_now('%Y')", "loop", "x.y.z", "(1/0)", "'a'|int + 1",
    "'a'|replace('', 'bb')", "range(99999)|join('xx')", "messages.pop()", "{}.update({})",
    "'ab'.__len__()", "().__class__.__base__", "x|attr('__class__')",
]
_STATEMENTS = [
    "{% for i in range(N) %}B{% endfor %}", "{% if E %}B{% else %}B{% endif %}",
    "{% set ns = namespace(x='ab') %}{% for i in range(N) %}{% set ns.x = ns.x ~ ns.x %}"
    "{% endfor %}{{ ns.x|length }}", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% include '/etc/passwd' %}", "{% import 'os' as os %}", "{% extends 'base' %}",
    "{% for m in messages %}{{ m.role }}: {{ m.content }}B{% endfor %}",
    "{% generation %}B{% endgeneration %}", "{{ E }}", "{% raw %}{{ x }}{% endraw %}",
    "{% for i in range(N) %}{% for j in range(N) %}{% endfor %}{% endfor %}",
    "{% set x = range(N)|list %}{% for a in x %}{% for b in x %}{% endfor %}{% endfor %}",
    "{% break %}", "{% for %}", "{{", "text", "{% filter upper %}B{% endfilter %}",
]


def _template_strategy() -> st.SearchStrategy[str]:
    def fill(parts: list[tuple[str, str, int]]) -> str:
        out = []
        for stmt, expr, n in parts:
            out.append(stmt.replace("N", str(n)).replace("E", expr).replace("B", "{{ " + expr
                                                                              + " }}"))
        return "".join(out)

    part = st.tuples(st.sampled_from(_STATEMENTS), st.sampled_from(_EXPRESSIONS),
                     st.sampled_from([0, 1, 3, 1000, 100_000, 10**7]))
    real = [(FIXTURES / "templates" / f).read_text() for f in ("gemma3.jinja",
                                                                "functiongemma.jinja")]
    return st.one_of(st.lists(part, min_size=1, max_size=4).map(fill),
                     st.sampled_from(real).flatmap(lambda s: mutations(s.encode(), len(s)))
                     .map(lambda b: b.decode("utf-8", "replace")))


def _template_target(source: str, scratch: Path) -> None:
    from gemma_mlx.text import jinja_template

    jinja_template.MAX_SECONDS = 1.0  # the deadline's mechanism is under test, not its value
    render_template = jinja_template.render_template
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    out = render_template(source, messages=messages, add_generation_prompt=True,
                          bos_token="<bos>", eos_token="<eos>", tools=None)
    assert "root:" not in out, "the template read a file"


def _image_seeds() -> list[bytes]:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    pic = Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
    out = []
    for fmt, mode, extra in [("PNG", "RGBA", {}), ("PNG", "P", {}), ("JPEG", "RGB", {}),
                             ("GIF", "P", {"save_all": True}), ("WEBP", "RGB", {}),
                             ("TIFF", "RGB", {}), ("BMP", "RGB", {}), ("PNG", "I;16", {})]:
        buf = io.BytesIO()
        img = pic.convert(mode)
        if fmt == "JPEG":
            exif = Image.Exif()
            exif[0x0112] = 6  # rotated: exif_transpose has work to do
            extra = {"exif": exif}
        img.save(buf, fmt, **extra)
        out.append(buf.getvalue())
    return out


def _image_strategy() -> st.SearchStrategy[bytes]:
    return st.sampled_from(_image_seeds()).flatmap(lambda s: mutations(s, 64))


def _image_target(data: bytes, scratch: Path) -> None:
    from gemma_mlx.media.image_processing import load_image, process_images

    path = scratch / "image"
    path.write_bytes(data)
    process_images([load_image(path)])


def _jsonl_strategy() -> st.SearchStrategy[bytes]:
    role = st.sampled_from(["user", "assistant", "system", "model", "tool", ""]) | json_values()
    message = st.fixed_dictionaries({"role": role, "content": st.text(max_size=30)
                                     | json_values()}) | json_values()
    record = st.one_of(
        st.fixed_dictionaries({"messages": st.lists(message, max_size=4) | json_values()}),
        st.fixed_dictionaries({"prompt": st.text(max_size=20) | json_values(),
                               "completion": st.text(max_size=20) | json_values()}),
        st.fixed_dictionaries({"text": st.text(max_size=40) | json_values()}), json_values())
    line = st.builds(json.dumps, record).map(str.encode) | st.binary(max_size=40) | st.integers(
        1, 50_000).map(lambda n: b"[" * n + b"]" * n)
    return st.lists(line, min_size=1, max_size=5).map(b"\n".join)


def _jsonl_target(data: bytes, scratch: Path) -> None:
    from gemma_mlx.lora.data import batches, load_dataset

    d = scratch / "data"
    d.mkdir(exist_ok=True)
    (d / "train.jsonl").write_bytes(data)
    examples = load_dataset(d, tiny_tokenizer())["train"]
    next(batches(examples, 1, 64, 0))


_server: dict[str, Any] = {}


def _body_strategy() -> st.SearchStrategy[tuple[str, bytes]]:
    content = st.text(max_size=20) | st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "image", "x"]), "text": st.text(max_size=9),
         "image_url": st.fixed_dictionaries({"url": st.sampled_from(
             ["data:image/png;base64,AAAA", "file:///etc/passwd", "http://example.com/x.png",
              "data:image/png;base64," + "A" * 4000])})}), max_size=2) | json_values()
    message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system",
                                                              "tool", "x"]),
                                     "content": content}) | json_values()
    schema = st.sampled_from([{"type": "object"}, {"type": "string", "maxLength": 3},
                              {"$ref": "#/x"}, {"type": "array", "items": {"$ref": "#"}},
                              {"pattern": "(a*)*b"}, True, False]) | json_values()
    common = {
        "model": st.sampled_from(["tiny", "x"]) | json_values(),
        "max_tokens": st.integers(-2, 40) | json_values(),
        "temperature": st.floats(-1, 3) | json_values(), "top_p": st.floats(-1, 2),
        "top_k": st.integers(-1, 100), "seed": st.integers(-(2**70), 2**70),
        "stop": st.lists(st.text(max_size=5), max_size=5) | json_values(),
        "stream": st.booleans(), "n": st.integers(-1, 10),
        "logit_bias": st.dictionaries(st.text(max_size=8), st.floats(-200, 200)),
        "logprobs": st.booleans(), "top_logprobs": st.integers(-1, 30),
        "response_format": st.fixed_dictionaries({"type": st.sampled_from(
            ["json_object", "json_schema", "text", "x"]), "json_schema": st.fixed_dictionaries(
            {"name": st.just("r"), "schema": schema})}) | json_values(),
        "tools": st.lists(st.fixed_dictionaries({"type": st.just("function"), "function":
                          st.fixed_dictionaries({"name": st.text(max_size=8),
                                                 "parameters": schema})}), max_size=2)
        | json_values(),
        "tool_choice": st.sampled_from(["auto", "none", "required"]) | json_values(),
    }
    chat = st.fixed_dictionaries({"messages": st.lists(message, max_size=3)},
                                 optional=common).map(json.dumps)
    completion = st.fixed_dictionaries({"prompt": st.text(max_size=20) | json_values()},
                                       optional=common).map(json.dumps)
    tokens = st.fixed_dictionaries({"text": st.text(max_size=20) | json_values(),
                                    "tokens": json_values()}).map(json.dumps)
    garbage = st.binary(max_size=200).map(lambda b: b.decode("latin-1")) | st.integers(
        1, 50_000).map(lambda n: "[" * n + "]" * n)
    return st.one_of(st.tuples(st.just("/v1/chat/completions"), chat | garbage),
                     st.tuples(st.just("/v1/completions"), completion | garbage),
                     st.tuples(st.sampled_from(["/tokenize", "/detokenize"]), tokens | garbage))


def _body_target(data: tuple[str, str], scratch: Path) -> None:
    import httpx

    if "url" not in _server:
        from .serving import running_server

        ctx = running_server(*tiny_model(), model_id="tiny", max_body_mb=1.0)
        _server["url"], _ = ctx.__enter__()
        _server["ctx"] = ctx
    route, body = data
    r = httpx.post(_server["url"] + route, content=body.encode("utf-8", "surrogatepass"),
                   headers={"Content-Type": "application/json"}, timeout=CASE_SECONDS)
    assert r.status_code < 500, f"{route}: HTTP {r.status_code}: {r.text[:300]}"
    if r.headers.get("content-type", "").startswith("application/json"):
        r.json()
    if r.status_code >= 400:
        assert r.json()["error"]["message"], "an error without a message"
        raise GemmaError(f"HTTP {r.status_code}")  # refused, as it should be


def close() -> None:
    """Stop the server the server surface started, if any."""
    if "ctx" in _server:
        _server.pop("ctx").__exit__(None, None, None)
        _server.clear()


SURFACES = {s.name: s for s in [
    Surface("gguf", _gguf_strategy, _gguf_target),
    Surface("safetensors", _safetensors_strategy, _safetensors_target),
    Surface("config", _config_strategy, _config_target),
    Surface("tokenizer", _tokenizer_strategy, _tokenizer_target),
    Surface("template", _template_strategy, _template_target),
    Surface("image", _image_strategy, _image_target),
    Surface("jsonl", _jsonl_strategy, _jsonl_target),
    Surface("server", _body_strategy, _body_target),
]}


def run_case(surface: Surface, data: Any, scratch: Path) -> str:
    """'ok' or 'refused' (a GemmaError); any other exception is a failure and propagates,
    as do Hang (past CASE_SECONDS) and GiantAllocation."""
    before = _peak_bytes()
    try:
        with _time_limit(CASE_SECONDS):
            surface.target(data, scratch)
        outcome = "ok"
    except GemmaError:
        outcome = "refused"
    grown = _peak_bytes() - before
    if grown >= GIANT_BYTES:
        raise GiantAllocation(f"peak memory grew by {grown / 2**30:.1f} GiB")
    return outcome
