"""ShieldGemma 2 against transformers: prompt ids, probabilities, layouts, convert, the CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from gemma_mlx.cli import main
from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.convert import convert
from gemma_mlx.formats.loading import load
from gemma_mlx.generation.shield import (
    DEFAULT_POLICIES,
    classify_images,
    select_policies,
    shared_prefix,
    shield_prompt_ids,
)
from gemma_mlx.media.image_processing import process_images
from gemma_mlx.models.shield import shield_key

from .conftest import FIXTURES

sys.path.insert(0, str(FIXTURES))
from shield_inputs import CUSTOM_POLICY, EMBED_KEY, IMAGES, embedding, shield_images  # noqa: E402

SHIELD = FIXTURES / "shield"
REF = np.load(SHIELD / "reference.npz")
CUSTOM = dict([CUSTOM_POLICY])
ORDER = [*DEFAULT_POLICIES, CUSTOM_POLICY[0]]  # the processor's: defaults, then custom
EXPECTED = REF["probabilities"][:, 0].reshape(len(IMAGES), len(ORDER))


def hub_name(key: str) -> str:
    """The google/gemma-3-4b-it names, which the ShieldGemma 2 hub file is expected to use."""
    key = shield_key(key)
    return key.replace("vision_tower.", "vision_tower.vision_model.", 1)


def memory_name(key: str) -> str:
    """transformers' in-memory names (model.model.language_model.layers...)."""
    key = shield_key(key)
    for old, new in (("language_model.model.", "model.model.language_model."),
                     ("vision_tower.", "model.model.vision_tower."),
                     ("multi_modal_projector.", "model.model.multi_modal_projector.")):
        if key.startswith(old):
            return new + key[len(old):]
    return key


def write_checkpoint(out: Path, tokenizer, rename=lambda k: k) -> Path:
    from safetensors.numpy import load_file, save_file

    out.mkdir(parents=True)
    for name in ("config.json", "chat_template.jinja", "processor_config.json"):
        shutil.copy(SHIELD / name, out)
    weights = {**load_file(SHIELD / "model.safetensors"), EMBED_KEY: embedding()}
    save_file({rename(k): v for k, v in weights.items()}, out / "model.safetensors",
              metadata={"format": "pt"})
    template, tokenizer.chat_template = tokenizer.chat_template, None
    try:
        tokenizer.save(out)  # tokenizer.model only: the checkpoint's template stays
    finally:
        tokenizer.chat_template = template
    return out


@pytest.fixture(scope="module")
def shield_dir(tmp_path_factory, model_270m) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("shield") / "v5", model_270m[1])


@pytest.fixture(scope="module")
def shield(shield_dir):
    return load(shield_dir)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    paths = shield_images(tmp_path_factory.mktemp("shield_images"))
    return [paths[n] for n in IMAGES]


def scores(results: list[dict[str, float]]) -> np.ndarray:
    return np.array([[row[p] for p in ORDER] for row in results])


@pytest.mark.parametrize("builtin", [False, True], ids=["checkpoint_template", "builtin"])
def test_prompt_ids_match_processor(shield, builtin):
    model, tokenizer = shield
    chosen = select_policies(model.policy_definitions, None, CUSTOM)
    assert list(chosen) == ORDER
    template = tokenizer.chat_template
    tokenizer.chat_template = None if builtin else template
    try:
        for row, text in enumerate(chosen.values()):
            assert shield_prompt_ids(model, tokenizer, text) == REF[f"ids.{row}"].tolist()
    finally:
        tokenizer.chat_template = template


def test_pixels_match_processor(shield, images):
    model, _ = shield
    for i, path in enumerate(images):
        pixels, _ = process_images([path], model.vision_config.image_size, None)
        assert np.abs(pixels[0] - (REF["pixel_codes"][i] / 127.5 - 1)).max() < 1e-6


def test_probabilities_match_transformers(shield, images):
    model, tokenizer = shield
    got = scores(classify_images(model, tokenizer, images, custom_policies=CUSTOM))
    assert np.abs(got - EXPECTED).max() < 1e-4


def test_tower_once_per_image_and_subset(shield, images, monkeypatch):
    model, tokenizer = shield
    model.__dict__.pop("_image_cache", None)
    calls = []
    original = model.get_image_features
    monkeypatch.setattr(model, "get_image_features", lambda px: calls.append(1) or original(px))
    out = classify_images(model, tokenizer, images, policies=["violence", "ip"],
                          custom_policies=CUSTOM)
    assert len(calls) == len(images)
    assert [list(r) for r in out] == [["violence", "ip"]] * 2
    cols = [ORDER.index("violence"), ORDER.index("ip")]
    assert np.abs(np.array([list(r.values()) for r in out]) - EXPECTED[:, cols]).max() < 1e-4


def test_shared_prefix_stops_before_the_policies():
    a, b = [2, 2, 5, 9, 9, 9, 7, 1, 4], [2, 2, 5, 9, 9, 9, 7, 3, 4]
    assert shared_prefix([a, b], image_token=9) == 7
    assert shared_prefix([a], image_token=9) == 8
    assert shared_prefix([a, [2, 2, 6, 9, 9, 9]], image_token=9) == 0  # differs before the image


@pytest.mark.parametrize("rename", [hub_name, memory_name], ids=["hub", "in_memory"])
def test_other_layouts(tmp_path, model_270m, images, rename):
    model, tokenizer = load(write_checkpoint(tmp_path / "ckpt", model_270m[1], rename))
    got = scores(classify_images(model, tokenizer, images, custom_policies=CUSTOM))
    assert np.abs(got - EXPECTED).max() < 1e-4


@pytest.mark.parametrize("quantize", [False, True], ids=["float", "q8"])
def test_convert_round_trip(tmp_path, shield_dir, images, quantize):
    out = tmp_path / "mlx"
    convert(shield_dir, out, quantize=quantize, q_bits=8, q_group_size=32, search=False)
    assert json.loads((out / "config.json").read_text())["model_type"] == "shieldgemma2"
    model, tokenizer = load(out)
    assert model.policy_definitions == DEFAULT_POLICIES
    got = scores(classify_images(model, tokenizer, images, custom_policies=CUSTOM))
    assert np.abs(got - EXPECTED).max() < (2e-2 if quantize else 1e-5)


def test_cli_json_and_table(shield_dir, images, capsys):
    args = ["shield", "--model", str(shield_dir), "--image", str(images[0]),
            "--image", str(images[1]), "--custom-policy", "=".join(CUSTOM_POLICY)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == [str(p) for p in images]
    assert np.abs(scores(list(out.values())) - EXPECTED).max() < 1e-4
    assert main([*args, "--policy", "sexual", "--policy", "dangerous"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["image", "sexual", "dangerous"]
    for i, line in enumerate(lines[1:3]):
        cells = line.split()
        assert cells[0] == str(images[i])
        want = EXPECTED[i, [ORDER.index("sexual"), ORDER.index("dangerous")]]
        assert np.allclose([float(c) for c in cells[1:]], want, atol=1e-4)


def test_cli_bad_policy(shield_dir, images, capsys):
    base = ["shield", "--model", str(shield_dir), "--image", str(images[0])]
    assert main([*base, "--policy", "gore"]) == 1
    err = capsys.readouterr().err
    assert "unknown policy 'gore'" in err and "dangerous, sexual, violence" in err
    assert main([*base, "--custom-policy", "no_equals_sign"]) == 1
    assert "NAME=TEXT" in capsys.readouterr().err


def test_not_a_shield_model(model_270m, images):
    with pytest.raises(GemmaError, match="not a ShieldGemma 2"):
        classify_images(*model_270m, images)
