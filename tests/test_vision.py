"""The vision path against transformers: tower, projector, image-block mask, processor, CLI."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from PIL import Image

from gemma_mlx.attention import attend, image_blocks
from gemma_mlx.cache import KVCache, RotatingKVCache
from gemma_mlx.config import ModelConfig
from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.loading import build_model, load
from gemma_mlx.generation.prefill import prefill_chunks
from gemma_mlx.media.image_processing import load_image, pan_and_scan
from gemma_mlx.models.vision import VisionConfig, VisionTower
from gemma_mlx.prompt import build_inputs, expand_image_placeholders
from tests.attention_reference import masked_attention
from tests.conftest import FIXTURES
from tests.fixtures.vision_inputs import (
    PROCESSOR_CASES,
    SIGLIP_REAL,
    drawn_images,
    siglip_pixels,
    siglip_weights,
)

VISION = FIXTURES / "vision"
TOL = 1e-4  # float32 logits of O(10); observed max |diff| 2e-5 to 4e-5


def _ref(case_dir: str) -> dict[str, np.ndarray]:
    return dict(np.load(VISION / case_dir / "reference.npz"))


def _max_diff(a, b) -> float:
    return float(np.abs(np.array(a, dtype=np.float32) - b).max())


@pytest.fixture(scope="module")
def tiny():
    return load(VISION / "tiny")[0]


@pytest.mark.parametrize("case", ["one", "two", "pas"])
def test_logits_match_transformers(tiny, case):
    r = _ref("tiny")
    out = tiny(mx.array(r[f"{case}.input_ids"]), pixel_values=mx.array(r[f"{case}.pixel_values"]))
    assert _max_diff(out, r[f"{case}.logits"]) <= TOL


def test_window_smaller_than_an_image_block():
    r = _ref("tiny_w3")
    model = load(VISION / "tiny_w3")[0]
    assert model.config.sliding_window == 3 < model.mm_tokens_per_image
    out = model(mx.array(r["two.input_ids"]), pixel_values=mx.array(r["two.pixel_values"]))
    assert _max_diff(out, r["two.logits"]) <= TOL


def test_image_features_match_and_replace_rows_unscaled(tiny):
    r = _ref("tiny")
    feats = tiny.get_image_features(mx.array(r["one.pixel_values"]))
    assert _max_diff(feats, r["one.image_features"]) <= 1e-5
    ids = mx.array(r["one.input_ids"])
    h = np.array(tiny.embed(ids, image_features=feats))
    rows = r["one.input_ids"][0] == tiny.image_token_index
    assert np.array_equal(h[0, rows], np.array(feats)[0])
    text = np.array(tiny.model.embed(ids))[0, ~rows]
    assert np.array_equal(h[0, ~rows], text)


def test_causal_mask_would_be_wrong(tiny):
    """Without the image blocks the logits move from the first image token on."""
    r = _ref("tiny")
    ids, px = mx.array(r["two.input_ids"]), mx.array(r["two.pixel_values"])
    h = tiny.model(None, None, tiny.embed(ids, px), image_blocks=())
    causal = np.array(tiny.logits(h))
    first = int(np.argmax(r["two.input_ids"][0] == tiny.image_token_index))
    err = np.abs(causal - r["two.logits"]).max(-1)[0]
    assert err[:first].max() <= TOL and err[first:].max() > 1e-2


def _renamed(layout: str) -> dict[str, mx.array]:
    w = mx.load(str(VISION / "tiny" / "model.safetensors"))
    out = {}
    for k, v in w.items():
        if layout == "hub" and k.startswith("vision_tower."):
            k = "vision_tower.vision_model." + k[len("vision_tower."):]
        if layout == "internal":
            k = "model." + k.replace("language_model.model.", "language_model.")
        if layout == "mlx_vlm" and k.endswith("patch_embedding.weight"):
            v = v.transpose(0, 2, 3, 1)
        out[k] = v
    return out


@pytest.mark.parametrize("layout", ["hub", "internal", "mlx_vlm"])
def test_checkpoint_layouts_load_the_same(tiny, layout):
    config = ModelConfig.from_file(VISION / "tiny" / "config.json")
    model = build_model(config, _renamed(layout), layout)
    r = _ref("tiny")
    args = mx.array(r["two.input_ids"]), mx.array(r["two.pixel_values"])
    assert _max_diff(model(args[0], pixel_values=args[1]), r["two.logits"]) <= TOL


def test_sanitize_is_idempotent(tiny):
    from mlx.utils import tree_flatten

    flat = dict(tree_flatten(tiny.parameters()))
    assert set(tiny.sanitize(flat)) == set(flat)


@pytest.mark.parametrize("step", [5, 8, 13])
def test_chunked_prefill_with_cache_equals_one_forward(tiny, step):
    """Chunks never split an image; the last position's logits equal the full forward's."""
    r = _ref("tiny")
    ids = r["pas.input_ids"]
    emb = tiny.embed(mx.array(ids), mx.array(r["pas.pixel_values"]))
    blocks = image_blocks(ids, tiny.image_token_index)
    bounds = prefill_chunks(ids.shape[1], step, blocks)
    assert all(not (s < b < e) for b in bounds for s, e in blocks)
    cache = tiny.make_cache()
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        h = tiny.model(None, cache, emb[:, a:b], [(s, e) for s, e in blocks if a <= s < b])
    assert _max_diff(tiny.logits(h[:, -1]), r["pas.logits"][:, -1]) <= TOL


def test_prefill_chunks_move_cuts_out_of_images():
    assert prefill_chunks(30, 10, [(8, 14)]) == [0, 8, 18, 28, 30]
    assert prefill_chunks(30, 4, [(0, 9)]) == [0, 9, 13, 17, 21, 25, 29, 30]


@pytest.mark.parametrize("lq, window, blocks", [
    (40, 8, [(5, 9), (12, 16)]),       # dense path, blocks shorter than the window
    (40, 3, [(5, 12), (20, 24)]),      # window 3 < block
    (600, 64, [(100, 356), (400, 470)]),  # banded path, a 256-token image
    (600, 0, [(100, 356), (500, 530)]),  # global layer, blocked path
])
def test_attention_with_image_blocks_matches_reference(lq, window, blocks):
    rng = np.random.default_rng(lq + window)
    q, k, v = (mx.array(rng.standard_normal((1, h, lq, 16)).astype(np.float32))
               for h in (4, 2, 2))
    out = attend(q, k, v, None, scale=0.25, window=window or None, blocks=blocks)
    ref = masked_attention(q, k, v, 0.25, np.arange(lq), np.arange(lq), window, blocks)
    assert _max_diff(out, ref) <= 1e-5
    # The same through caches, in chunks that keep each block whole.
    cache = RotatingKVCache(window) if window else KVCache()
    outs = []
    bounds = prefill_chunks(lq, 150, blocks)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        outs.append(attend(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], cache, scale=0.25,
                           window=window or None, blocks=[x for x in blocks if a <= x[0] < b]))
    assert _max_diff(mx.concatenate(outs, axis=2), ref) <= 1e-5


def test_a_split_image_block_is_refused():
    q = mx.zeros((1, 1, 4, 8))
    cache = KVCache()
    with pytest.raises(GemmaError, match="split"):
        attend(q, q, q, cache, scale=1.0, window=None, blocks=[(2, 6)])


def test_image_blocks_are_runs_of_the_image_token():
    ids = np.array([[2, 9, 9, 5, 9, 9, 9, 1]])
    assert image_blocks(ids, 9) == ((1, 3), (4, 7))
    assert image_blocks(ids, 9, offset=10) == ((11, 13), (14, 17))
    with pytest.raises(GemmaError, match="same positions"):
        image_blocks(np.array([[9, 1], [1, 9]]), 9)


def test_vision_tower_at_the_real_width():
    """SigLIP at 1152 wide, 16 heads, 896 px (4096 patches), 2 layers, float32."""
    r = np.load(VISION / "siglip_real_width.npz")
    tower = VisionTower(VisionConfig.from_dict(SIGLIP_REAL))
    tower.load_weights([(k, mx.array(v)) for k, v in siglip_weights().items()], strict=True)
    out = np.array(tower(mx.array(siglip_pixels())))[0]
    assert out.shape == (4096, 1152)
    assert _max_diff(out[r["rows"]], r["hidden_rows"]) <= 1e-4
    assert _max_diff(out.mean(0), r["hidden_mean"]) <= 1e-5


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    return drawn_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def tokenizer(model_270m):
    tok = model_270m[1]
    tok.add_special_token("<image_soft_token>", 262144)
    return tok


@pytest.mark.parametrize("i", range(len(PROCESSOR_CASES)))
def test_processor_matches_transformers(tokenizer, images, i):
    text, names, pas = PROCESSOR_CASES[i]
    r = np.load(VISION / "processor.npz")
    ids, pixels = build_inputs(tokenizer, text, [images[n] for n in names], image_size=896,
                               tokens_per_image=256, pan_and_scan=pas)
    assert ids == r[f"{i}.input_ids"].tolist()
    expected = r[f"{i}.pixel_codes"].astype(np.float32) / np.float32(127.5) - 1
    assert pixels.shape == expected.shape
    assert _max_diff(pixels, expected) <= 1e-6


@pytest.mark.parametrize("size, crops", [
    ((1200, 400), 3), ((400, 1200), 3), ((2000, 300), 4), ((600, 500), 2), ((1000, 900), 0),
    ((300, 100), 0),  # crops would be narrower than 256 px
])
def test_pan_and_scan_crop_counts(size, crops):
    """Counts measured with transformers' processor (research/multimodal.md 1.5)."""
    got = pan_and_scan(Image.new("RGB", size))
    assert len(got) == crops
    if crops:
        assert sum(c.width * c.height for c in got) == size[0] * size[1]


def test_exif_orientation_and_modes(images):
    assert load_image(images["exif_rotated_900x300"]).size == (300, 900)
    for name in ("rgba_300x200", "gray_wide_1200x400", "palette_tall_400x1200"):
        assert load_image(images[name]).mode == "RGB"
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # a PIL image: composited onto white
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height (a decompression bomb's trick)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_bad_image_files_get_clear_errors(tmp_path, images):
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(images["photo_640x480"].read_bytes()[:3000])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    bomb = tmp_path / "bomb.png"
    _png_claiming(bomb, 30000, 30000)
    for path, message in [(truncated, "truncated|complete"), (text, "not an image format"),
                          (tmp_path / "missing.jpg", "no such image file"),
                          (bomb, "megapixels|decompression bomb")]:
        with pytest.raises(GemmaError, match=message) as e:
            load_image(path)
        assert str(path) in str(e.value)


def test_placeholders_must_match_images():
    assert expand_image_placeholders("a<start_of_image>b", [0], 2) == (
        "a\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\nb")
    with pytest.raises(GemmaError, match="1 <start_of_image> placeholder"):
        expand_image_placeholders("a<start_of_image>b", [0, 0], 2)


def test_images_on_a_text_model_are_refused(model_270m, images):
    from gemma_mlx.generation.generate import generate

    with pytest.raises(GemmaError, match="no vision tower"):
        generate(*model_270m, "Hi", images=[images["small_90x100"]], max_tokens=1)


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gemma_mlx.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_image_generation_and_chat_end_to_end(images):
    """The random-weight demo model: images through the CLI, one and two per prompt."""
    r = _cli("generate", "--model", "vision-demo", "--image", str(images["photo_640x480"]),
             "--image", str(images["gray_wide_1200x400"]), "--pan-and-scan",
             "--prompt", "What is in these images?", "--max-tokens", "4")
    assert r.returncode == 0, r.stderr
    # 2 images, the second with 3 crops: 5 x (256 + 2) image tokens, plus text
    assert int(r.stdout.split("Prompt: ")[1].split()[0]) > 5 * 258
    chat = _cli("chat", "--model", "vision-demo", "--max-tokens", "3",
                stdin=f"/image {images['small_90x100']}\nWhat is this?\n/image /no/such.png\n"
                      "And now?\n")
    assert chat.returncode == 0, chat.stderr
    assert "[image 1 attached" in chat.stdout and "no such image file" in chat.stdout
    assert chat.stdout.count(">> ") == 5 and "Traceback" not in chat.stderr


def test_convert_keeps_or_quantizes_the_vision_tower(tmp_path, tiny):
    from gemma_mlx.formats.convert import convert
    from gemma_mlx.models.quantized import QuantizedLinear

    r = _ref("tiny")
    ids, px = mx.array(r["two.input_ids"]), mx.array(r["two.pixel_values"])
    for bits in (None, 8):
        out = tmp_path / f"vision-{bits}"
        convert(VISION / "tiny", out, vision_bits=bits)
        model = load(out)[0]
        q = model.vision_tower.encoder.layers[0].self_attn.q_proj
        assert isinstance(q, QuantizedLinear) == (bits == 8)
        assert isinstance(model.vision_tower.encoder.layers[0].mlp.fc1, type(q))
        err = _max_diff(model(ids, pixel_values=px), r["two.logits"])
        # 8 bits: about 1/500 of the logits' range (observed 0.2 of +-40)
        assert err <= (TOL if bits is None else 0.01 * np.abs(r["two.logits"]).max()), err
    with pytest.raises(GemmaError, match="vision-bits"):
        convert(VISION / "tiny", tmp_path / "bad", vision_bits=4)


def test_encode_images_reuses_features_of_seen_images(tiny, monkeypatch):
    r = _ref("tiny")
    px = mx.array(r["two.pixel_values"])
    first = np.array(tiny.encode_images(px))
    calls = []
    real = tiny.get_image_features
    monkeypatch.setattr(tiny, "get_image_features", lambda p: calls.append(1) or real(p),
                        raising=False)
    again = tiny.encode_images(mx.concatenate([px[1:], px[:1], px[:1] * 0.5]))
    assert len(calls) == 1  # only the new third image goes through the tower
    assert np.array_equal(np.array(again)[:2], first[::-1])
