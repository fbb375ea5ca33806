"""LoRA: gradients, the chunked loss, data masks, fuse, exact resume, frozen base."""

from __future__ import annotations

import json
import re

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.loading import load
from gemma_mlx.lora.data import collate, encode_record, load_dataset
from gemma_mlx.lora.layers import apply_lora, fuse_lora, load_adapters
from gemma_mlx.lora.loss import chunked_nll, lm_loss
from gemma_mlx.lora.trainer import TrainingArgs, train

from .conftest import FIXTURES

SPECIAL = {"<bos>": 2, "<eos>": 1, "<start_of_turn>": 105, "<end_of_turn>": 106}


class CharTokenizer:
    """A character tokenizer over the fixtures' 512-token vocabulary."""

    eos_token_ids = (1, 106)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [2] if add_special_tokens else []
        for piece in re.split(r"(<bos>|<eos>|<start_of_turn>|<end_of_turn>)", text):
            ids += [SPECIAL[piece]] if piece in SPECIAL else [200 + ord(c) % 300 for c in piece]
        return ids


def _model(case="gqa", rank=4, layers=3):
    model, _ = load(FIXTURES / "text" / case)
    apply_lora(model, layers, rank, 2.0, 0.0)
    for _, m in model.named_modules():  # non-zero B, so the adapter matters
        if hasattr(m, "lora_b"):
            m.lora_b = mx.random.normal(m.lora_b.shape) * 0.05
    return model


def _data(n=12):
    tok = CharTokenizer()
    rows = [{"messages": [{"role": "user", "content": f"add {i} and {i + 1}"},
                          {"role": "assistant", "content": str(2 * i + 1)}]} for i in range(n)]
    return [encode_record(r, tok) for r in rows]


def test_chat_mask_covers_only_the_model_turn():
    ex = _data(1)[0]
    tok = CharTokenizer()
    start = len(tok.encode("<start_of_turn>user\nadd 0 and 1<end_of_turn>\n<start_of_turn>model\n"))
    assert not any(ex.loss[:start])
    assert ex.loss[start:] == [True] * 3  # "1", <end_of_turn>, "\n"
    pc = encode_record({"prompt": "p", "completion": "c"}, tok)
    assert sum(pc.loss) == 3
    assert all(encode_record({"text": "abc"}, tok).loss)


def test_a_bad_line_names_file_and_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "ok"}\n{"txet": "typo"}\n')
    with pytest.raises(GemmaError, match=r"train.jsonl:2: expected"):
        load_dataset(tmp_path, CharTokenizer())
    (tmp_path / "train.jsonl").write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(GemmaError, match=r"train.jsonl:2:"):
        load_dataset(tmp_path, CharTokenizer())


def test_chunked_loss_equals_the_full_one_with_its_gradient():
    model, _ = load(FIXTURES / "text" / "gqa")
    h = mx.random.normal((37, model.config.hidden_size), key=mx.random.key(1))
    t = mx.random.randint(0, 512, (37,), key=mx.random.key(2))

    def full(h):
        logits = model.logits(h)
        return (mx.logsumexp(logits, -1) - mx.take_along_axis(logits, t[:, None], -1)[:, 0]).sum()

    chunked = lambda h: chunked_nll(model.logits, h, t, chunk=8)  # noqa: E731
    assert abs(full(h).item() - chunked(h).item()) < 1e-3
    assert mx.abs(mx.grad(full)(h) - mx.grad(chunked)(h)).max().item() < 1e-5


def test_lora_gradient_matches_finite_differences():
    model = _model()
    ids, mask = collate(_data(2), 64)
    ids = mx.array(ids)
    loss_and_grad = nn.value_and_grad(model, lambda m: lm_loss(m, ids, mask)[0])
    _, grads = loss_and_grad(model)
    flat = dict(tree_flatten(grads))
    name = f"model.layers.{len(model.layers) - 1}.self_attn.q_proj.lora_b"
    layer = model.layers[-1].self_attn.q_proj
    eps, checked = 1e-2, 0
    for idx in [(0, 0), (1, 5), (3, 17)]:
        base = layer.lora_b
        values = []
        for sign in (1, -1):
            layer.lora_b = base.at[idx].add(sign * eps)
            values.append(lm_loss(model, ids, mask)[0].item())
        layer.lora_b = base
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = flat[name][idx].item()
        assert abs(numeric - analytic) <= 2e-3 + 2e-2 * abs(analytic)
        checked += 1
    assert checked == 3


@pytest.mark.parametrize("case, quantize", [("gqa", False), ("mqa", True)])
def test_fused_model_equals_base_plus_adapter(case, quantize):
    model = _model(case)
    if quantize:  # QLoRA: adapters over 8-bit groups of 32, fused without requantizing
        nn.quantize(model, 32, 8, class_predicate=lambda p, m: isinstance(m, nn.Linear))
    x = mx.array(np.load(FIXTURES / "text" / case / "reference.npz")["input_ids"])
    model.eval()
    with_adapter = model(x)
    fuse_lora(model, dequantize=True)
    assert not any("lora" in k for k, _ in tree_flatten(model.parameters()))
    assert mx.abs(model(x) - with_adapter).max().item() < 1e-4


def _run(tmp_path, iters, resume=None, data=None):
    mx.random.seed(0)  # the same adapter initialisation in every run
    model = _model(rank=4)
    for _, m in model.named_modules():
        if hasattr(m, "lora_b"):
            m.lora_b = mx.zeros(m.lora_b.shape)
    args = TrainingArgs(iters=iters, batch_size=2, learning_rate=1e-3, save_every=3,
                        steps_per_eval=100)
    return model, train(model, {"train": data or _data()}, args, tmp_path, {"num_layers": 3},
                        resume)


def test_resume_continues_the_same_loss_curve(tmp_path):
    _, straight = _run(tmp_path / "a", 6)
    _, first = _run(tmp_path / "b", 3)
    _, rest = _run(tmp_path / "b2", 6, resume=tmp_path / "b" / "adapters.safetensors")
    assert len(rest) == 3
    np.testing.assert_allclose(first + rest, straight, rtol=1e-5)
    assert straight[-1] < straight[0]


def test_training_changes_only_the_adapters(tmp_path):
    model, _ = load(FIXTURES / "text" / "gqa")
    base = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    apply_lora(model, 3, 4, 2.0, 0.0)
    args = TrainingArgs(iters=3, batch_size=2, learning_rate=1e-2, save_every=3)
    train(model, {"train": _data()}, args, tmp_path, {"num_layers": 3,
          "lora_parameters": {"rank": 4, "scale": 2.0, "dropout": 0.0}})
    after = dict(tree_flatten(model.parameters()))
    for k, v in base.items():
        head, _, leaf = k.rpartition(".")
        wrapped = f"{head}.linear.{leaf}"  # a base layer now inside a LoRALinear
        assert np.array_equal(np.array(after[wrapped if wrapped in after else k]), v), k
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["lora_parameters"]["rank"] == 4
    fresh, _ = load(FIXTURES / "text" / "gqa")
    load_adapters(fresh, tmp_path)
    x = mx.array([[2, 5, 9, 200]])
    model.eval()
    assert mx.abs(fresh(x) - model(x)).max().item() < 1e-5


def _checkpoint_with_tokenizer(tmp_path):
    import shutil

    from .test_tokenizer import _tiny_tokenizer_json

    model_dir = tmp_path / "model"
    shutil.copytree(FIXTURES / "text" / "gqa", model_dir)
    _tiny_tokenizer_json(model_dir)
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"prompt": f"hello {'a' * (i % 5)}", "completion": "bonsoir"} for i in range(10)]
    for split in ("train", "valid", "test"):
        (data / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return model_dir, data


def test_lora_cli_train_test_generate_fuse(tmp_path, capsys):
    from gemma_mlx.cli import main

    model_dir, data = _checkpoint_with_tokenizer(tmp_path)
    adapters, fused = tmp_path / "adapters", tmp_path / "fused"
    config = tmp_path / "lora.yaml"
    config.write_text("iters: 4\nbatch_size: 2\nnum_layers: 2\nlearning_rate: 0.001\n")
    common = ["--model", str(model_dir), "--data", str(data), "--adapter-path", str(adapters)]
    assert main(["lora", "--train", "-c", str(config), "--save-every", "2", *common]) == 0
    assert (adapters / "0000002_adapters.safetensors").is_file()
    assert json.loads((adapters / "adapter_config.json").read_text())["num_layers"] == 2
    assert main(["lora", "--test", *common]) == 0
    assert "Test loss" in capsys.readouterr().out
    assert main(["generate", "--model", str(model_dir), "--adapter-path", str(adapters),
                 "--prompt", "hello", "--max-tokens", "3"]) == 0
    assert main(["fuse", "--model", str(model_dir), "--adapter-path", str(adapters),
                 "--save-path", str(fused)]) == 0
    x = mx.array([[2, 7, 9, 11, 13]])
    a, _ = load(model_dir, adapter_path=adapters)
    b, _ = load(fused)
    assert mx.abs(a(x) - b(x)).max().item() < 1e-4


def test_lora_cli_reports_bad_data_with_file_and_line(tmp_path, capsys):
    from gemma_mlx.cli import main

    model_dir, data = _checkpoint_with_tokenizer(tmp_path)
    (data / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n{"oops": 1}\n')
    assert main(["lora", "--train", "--model", str(model_dir), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert "train.jsonl:2:" in err and "Traceback" not in err


def test_gradient_checkpointing_gives_the_same_training(tmp_path):
    curves = []
    for checkpoint in (False, True):
        mx.random.seed(0)
        model = _model(rank=4)
        args = TrainingArgs(iters=3, batch_size=2, learning_rate=1e-3, save_every=3,
                            grad_checkpoint=checkpoint)
        curves.append(train(model, {"train": _data()}, args, tmp_path / str(checkpoint),
                            {"num_layers": 3}))
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-5)
