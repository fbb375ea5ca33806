"""Fine-tuning data: train/valid/test.jsonl in chat, prompt-completion or text form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GemmaError
from ..text.chat_template import render_chat

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Example:
    """Token ids and, per id, whether predicting it counts in the loss."""

    ids: list[int]
    loss: list[bool]


def _messages(messages: list[dict[str, Any]], tokenizer) -> Example:
    """Gemma chat template; the loss covers each model turn (its text and <end_of_turn>)."""
    ids = tokenizer.encode(render_chat(messages, add_generation_prompt=False),
                           add_special_tokens=False)
    loss = [False] * len(ids)
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        start = len(tokenizer.encode(render_chat(messages[:i], add_generation_prompt=True),
                                     add_special_tokens=False))
        end = len(tokenizer.encode(render_chat(messages[: i + 1], add_generation_prompt=False),
                                   add_special_tokens=False))
        loss[start:end] = [True] * (end - start)
    return Example(ids, loss)


def encode_record(record: Any, tokenizer, mask_prompt: bool = True) -> Example:
    """One JSON record -> Example; raises ValueError on a shape we do not know."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    if "messages" in record:
        ex = _messages(record["messages"], tokenizer)
    elif "prompt" in record and "completion" in record:
        ex = _messages([{"role": "user", "content": record["prompt"]},
                        {"role": "assistant", "content": record["completion"]}], tokenizer)
    elif "text" in record:
        ids = tokenizer.encode(record["text"]) + [tokenizer.eos_token_ids[0]]
        return Example(ids, [True] * len(ids))
    else:
        raise ValueError('expected "messages", "prompt" and "completion", or "text"')
    if not mask_prompt:
        ex = Example(ex.ids, [True] * len(ex.ids))
    if not any(ex.loss[1:]):
        raise ValueError("nothing to learn: no assistant/completion tokens")
    return ex


def load_split(path: Path, tokenizer, mask_prompt: bool = True) -> list[Example]:
    """Read one .jsonl file; a bad line raises GemmaError naming the file and line."""
    out = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(encode_record(json.loads(line), tokenizer, mask_prompt))
            except (ValueError, KeyError, TypeError, AttributeError, GemmaError) as e:
                # ValueError covers bad JSON and bad UTF-8 too
                raise GemmaError(f"{path}:{n}: {str(e)[:300]}") from None
            except RecursionError:
                raise GemmaError(f"{path}:{n}: JSON nested too deeply") from None
    if not out:
        raise GemmaError(f"{path}: no examples")
    return out


def load_dataset(directory: str | Path, tokenizer, mask_prompt: bool = True,
                 splits: tuple[str, ...] = SPLITS) -> dict[str, list[Example]]:
    """The splits present in `directory` ({split}.jsonl)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GemmaError(f"{directory}: no such data directory")
    data = {s: load_split(directory / f"{s}.jsonl", tokenizer, mask_prompt)
            for s in splits if (directory / f"{s}.jsonl").is_file()}
    if "train" in splits and "train" not in data:
        raise GemmaError(f"{directory}: no train.jsonl")
    return data


def batches(examples: list[Example], batch_size: int, max_seq_length: int, seed: int,
            start_step: int = 0, rank: int = 0, ranks: int = 1):
    """Endless batches in a seeded order (reshuffled each epoch), skipping the first
    `start_step` so a resumed run sees the same data: (ids [B, L], loss mask [B, L-1]).
    With several ranks, rank r gets rows [r*B/N, (r+1)*B/N) of every batch."""
    if len(examples) < batch_size:
        raise GemmaError(f"batch size {batch_size} is larger than the {len(examples)} examples")
    per_epoch = len(examples) // batch_size
    step = 0
    for epoch in range(1 << 30):
        order = np.random.default_rng(seed + epoch).permutation(len(examples))
        for b in range(per_epoch):
            if step >= start_step:
                rows = order[b * batch_size:(b + 1) * batch_size]
                share = batch_size // ranks
                rows = rows[rank * share:(rank + 1) * share]
                yield collate([examples[i] for i in rows], max_seq_length)
            step += 1


def collate(group: list[Example], max_seq_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest (truncated to max_seq_length); mask[t] says whether the
    token at t+1 is a target."""
    length = min(max(len(e.ids) for e in group), max_seq_length)
    ids = np.zeros((len(group), length), np.int32)
    mask = np.zeros((len(group), length - 1), bool)
    for i, e in enumerate(group):
        n = min(len(e.ids), length)
        ids[i, :n] = e.ids[:n]
        mask[i, : n - 1] = e.loss[1:n]
    return ids, mask
