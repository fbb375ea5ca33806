"""`gemma-mlx batch`: a JSONL job through the batch engine, written as it goes, resumable."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import GemmaError
from .batch import BatchEngine, Request
from .constraints import make_constraint
from .generate import check_token_ids
from .sampling import make_repetition_penalty, make_sampler


def recover_output(path: Path) -> set[int]:
    """The input lines already done in `path`. A last line cut short by a kill is removed, so
    every record in the file is whole."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # everything after the last newline is a partial record
    done = set()
    for i, line in enumerate(data[:keep].splitlines(), start=1):
        try:
            done.add(int(json.loads(line)["line"]))
        except (ValueError, KeyError, TypeError):
            raise GemmaError(f"{path}, line {i}: not a record of gemma-mlx batch; use another "
                             "--output or remove the file") from None
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
    return done


class _Writer:
    """Appends one whole record per write, flushed to disk, so a kill leaves no half line."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict) -> None:
        os.write(self.fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _records(path: Path, done: set[int]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed record or the error text) for the lines not yet done."""
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise GemmaError(f"{path}: cannot be read ({e.strerror})") from None
    with f:
        for n, line in enumerate(f, start=1):
            if n in done or not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                yield n, f"not valid JSON ({e})"


def _request(record: Any, n: int, tokenizer: Any, model: Any, opts: dict) -> Request:
    if not isinstance(record, dict):
        raise GemmaError("a record must be a JSON object")
    if "messages" in record:
        prompt = tokenizer.apply_chat_template(record["messages"])
    elif isinstance(record.get("prompt"), str):
        prompt = tokenizer.encode(record["prompt"])
    elif isinstance(record.get("prompt"), list):
        prompt = check_token_ids(record["prompt"], model.config.vocab_size)
    else:
        raise GemmaError('a record needs "prompt" (text or token ids) or "messages"')
    max_tokens = record.get("max_tokens", opts["max_tokens"])
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise GemmaError("max_tokens must be a positive integer")
    schema = record.get("json_schema", opts["json_schema"])
    constraint = make_constraint(tokenizer, model.config.vocab_size, json_schema=schema)
    penalty = opts["repetition_penalty"]
    return Request(prompt, max_tokens, opts["sampler"],
                   [make_repetition_penalty(penalty)] if penalty else [], constraint,
                   id=(n, record.get("id", n)))


def run_batch_job(
    model: Any, tokenizer: Any, input_path: str | Path, output_path: str | Path, *,
    batch_size: int = 16, max_tokens: int = 256, json_schema: Any = None,
    temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, min_p: float = 0.0,
    repetition_penalty: float | None = None, prefill_step_size: int = 512,
    kv_bits: int | None = None, kv_budget: int | None = None, seed: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate for every record of `input_path` into `output_path`, resuming a job that was
    interrupted: lines already there are skipped, a partial last line is dropped."""
    import mlx.core as mx
    from tqdm import tqdm

    if seed is not None:
        mx.random.seed(seed)
    input_path, output_path = Path(input_path), Path(output_path)
    if json_schema is not None:
        make_constraint(tokenizer, model.config.vocab_size, json_schema=json_schema)  # fail now
    done = recover_output(output_path)
    pending = sum(1 for n, _ in _records(input_path, done))
    opts = {"max_tokens": max_tokens, "json_schema": json_schema, "sampler":
            make_sampler(temperature, top_p, top_k, min_p),
            "repetition_penalty": repetition_penalty}
    engine = BatchEngine(model, tokenizer, batch_size, prefill_step_size, kv_budget, kv_bits)
    records, writer = _records(input_path, done), _Writer(output_path)
    texts: dict[Any, list[str]] = {}
    counts = {"written": 0, "errors": 0, "skipped": len(done), "tokens": 0}
    bar = tqdm(total=pending, unit="rec", disable=not progress, desc="batch")
    start = time.perf_counter()
    try:
        while True:
            while len(engine.queue) < batch_size and (item := next(records, None)):
                n, record = item
                try:
                    if isinstance(record, str):
                        raise GemmaError(record)
                    engine.submit(_request(record, n, tokenizer, model, opts))
                except GemmaError as e:
                    rid = record.get("id", n) if isinstance(record, dict) else n
                    writer.write({"id": rid, "line": n, "error": f"line {n}: {e}"})
                    counts["errors"] += 1
                    bar.update(1)
            if not engine.has_work:
                break
            for event in engine.step():
                texts.setdefault(event.id, []).append(event.text)
                counts["tokens"] += 1
                if event.finish_reason:
                    n, rid = event.id
                    writer.write({"id": rid, "line": n, "text": "".join(texts.pop(event.id)),
                                  "finish_reason": event.finish_reason,
                                  "prompt_tokens": event.prompt_tokens,
                                  "generation_tokens": event.generation_tokens})
                    counts["written"] += 1
                    bar.update(1)
            rate = counts["tokens"] / (time.perf_counter() - start)
            bar.set_postfix_str(f"{rate:.1f} tok/s", refresh=False)
    finally:
        bar.close()
        writer.close()
    return counts
