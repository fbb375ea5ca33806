"""The gemma-mlx command line: argparse only, each subcommand calls one library function."""

from __future__ import annotations

import argparse
import sys

from .errors import GemmaError

DEFAULT_PROMPT = "The capital of France is"


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint directory, .gguf file or HF repo id "
                   "(default: the embedded Gemma 3 270M)")
    p.add_argument("--system", help="system prompt (implies the chat template)")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--temp", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--min-p", type=float, default=0.0)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--kv-bits", type=int, choices=[4, 8], default=None,
                   help="quantize the KV caches")
    p.add_argument("--prefill-step-size", type=int, default=512)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gemma-mlx", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate text from a prompt")
    _sampling_args(g)
    g.add_argument("--prompt", "-p", default=DEFAULT_PROMPT)
    g.add_argument("--chat-template", action="store_true",
                   help="wrap the prompt in Gemma's chat template (for -it models)")
    c = sub.add_parser("chat", help="interactive chat with history")
    _sampling_args(c)
    return ap


def _sampling_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        max_tokens=args.max_tokens, temperature=args.temp, top_k=args.top_k, top_p=args.top_p,
        min_p=args.min_p, repetition_penalty=args.repetition_penalty, seed=args.seed,
        kv_bits=args.kv_bits, prefill_step_size=args.prefill_step_size,
    )


def _load(args: argparse.Namespace):
    from .default_model import ensure_default_model
    from .loading import load

    path = args.model or ensure_default_model()
    model, tokenizer = load(path, progress=True)
    if tokenizer is None:
        raise GemmaError(f"{path}: has no tokenizer (tokenizer.model or tokenizer.json)")
    return model, tokenizer


def run_generate(args: argparse.Namespace) -> None:
    from .generate import stream_generate

    model, tokenizer = _load(args)
    prompt = args.prompt
    if args.chat_template or args.system:
        messages = [{"role": "system", "content": args.system}] if args.system else []
        prompt = tokenizer.apply_chat_template(messages + [{"role": "user", "content": prompt}])
    last = None
    for last in stream_generate(model, tokenizer, prompt, **_sampling_kwargs(args)):
        print(last.text, end="", flush=True)
    if last is not None:
        print("\n" + "=" * 10)
        print(f"Prompt: {last.prompt_tokens} tokens, {last.prompt_tps:.3f} tokens-per-sec")
        print(f"Generation: {last.generation_tokens} tokens, "
              f"{last.generation_tps:.3f} tokens-per-sec")
        print(f"Peak memory: {last.peak_memory:.3f} GB")


def run_chat(args: argparse.Namespace) -> None:
    from .generate import stream_generate

    model, tokenizer = _load(args)
    system = [{"role": "system", "content": args.system}] if args.system else []
    history: list[dict] = []
    print("Chat with Gemma. /reset clears the history, /exit (or Ctrl-D) quits.")
    while True:
        try:
            line = input(">> ").strip()
        except EOFError:
            print()
            return
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            history = []
            continue
        if not line:
            continue
        history.append({"role": "user", "content": line})
        ids = tokenizer.apply_chat_template(system + history)
        reply = []
        for r in stream_generate(model, tokenizer, ids, **_sampling_kwargs(args)):
            print(r.text, end="", flush=True)
            reply.append(r.text)
        print()
        history.append({"role": "assistant", "content": "".join(reply)})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"generate": run_generate, "chat": run_chat}
    try:
        commands[args.command](args)
    except GemmaError as e:
        print(f"gemma-mlx: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
