"""The gemma-mlx command line: argparse only, each subcommand calls one library function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .commands.args import bounded, force_arg, int8_arg
from .commands.convert import add_convert_args, run_convert
from .commands.load import load_model
from .commands.lora import add_fuse_args, add_lora_args, run_fuse, run_lora
from .commands.serve import add_serve_args, run_serve
from .commands.shield import add_shield_args, run_shield
from .errors import GemmaError

DEFAULT_PROMPT = "The capital of France is"


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint directory, .gguf file or HF repo id "
                   "(default: the embedded Gemma 3 270M; 'vision-demo': the same with a "
                   "random-weight vision tower, for smoke tests)")
    p.add_argument("--system", help="system prompt (implies the chat template)")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--temp", type=float, default=None,
                   help="0 = greedy (generate, chat: the model's generation_config.json, else "
                   "Gemma 3's 1.0, top-k 64, top-p 0.95; batch: greedy)")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--min-p", type=float, default=0.0)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--kv-bits", type=int, choices=[4, 8], default=None,
                   help="quantize the KV caches")
    p.add_argument("--prefill-step-size", type=int, default=512)
    p.add_argument("--adapter-path", help="LoRA adapters saved by gemma-mlx lora")
    p.add_argument("--pan-and-scan", action="store_true",
                   help="add crops of wide or tall images (transformers' pan-and-scan)")
    int8_arg(p)
    force_arg(p)


def _speculative_args(p: argparse.ArgumentParser) -> None:
    one = p.add_mutually_exclusive_group()
    one.add_argument("--draft-model", metavar="M", help="speculative decoding with this "
                     "smaller Gemma 3 (same tokenizer) proposing tokens; output unchanged")
    one.add_argument("--prompt-lookup", action="store_true", help="speculative decoding "
                     "with drafts copied from the prompt and the output so far (n-grams)")
    p.add_argument("--num-draft-tokens", type=int, default=None, metavar="K",
                   help="longest draft (default 3 with --draft-model, 8 with --prompt-lookup)")


def _constraint_args(p: argparse.ArgumentParser) -> None:
    one = p.add_mutually_exclusive_group()
    one.add_argument("--json-schema", metavar="SCHEMA",
                     help="output JSON valid for this schema (a .json file or inline JSON)")
    one.add_argument("--regex", metavar="PATTERN", help="output matching this regex")
    one.add_argument("--grammar", metavar="FILE",
                     help="output in this Lark grammar (llguidance's dialect)")
    one.add_argument("--tools", metavar="FILE",
                     help="a JSON file with OpenAI-style tool specs; prints parsed calls "
                     "as JSON (implies the chat template)")
    p.add_argument("--tool-choice", default="auto",
                   help="auto, none, required, or a function name to call")


def _video_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video-fps", type=bounded(float, 0, strict=True), default=1.0,
                   help="video frames sampled per second (default 1)")
    p.add_argument("--max-frames", type=bounded(int, 1), default=8,
                   help="at most this many frames per video, spread over the clip (default 8)")


def _repeat_stop_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-repeat-stop", dest="repeat_stop", action="store_false",
                   help="keep going when the output repeats one block of tokens 3 times "
                   "(by default that ends the reply)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gemma-mlx", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate text from a prompt")
    _sampling_args(g)
    g.add_argument("--prompt", "-p", default=DEFAULT_PROMPT)
    g.add_argument("--image", action="append", default=[], metavar="PATH",
                   help="an image for the prompt (repeatable; needs a 4B-27B model, or "
                   "--model vision-demo); implies the chat template")
    g.add_argument("--video", action="append", default=[], metavar="PATH",
                   help="a video (mp4/mov/webm, GIF, or a folder of numbered frames) for the "
                   "prompt, as timestamped frames (repeatable); implies the chat template")
    _video_args(g)
    g.add_argument("--chat-template", action="store_true",
                   help="wrap the prompt in Gemma's chat template (for -it models)")
    g.add_argument("--raw-prompt", action="store_true",
                   help="never apply the chat template, even with --image or --tools")
    _constraint_args(g)
    _speculative_args(g)
    _repeat_stop_arg(g)
    c = sub.add_parser("chat", help="interactive chat with history")
    _sampling_args(c)
    _video_args(c)
    _speculative_args(c)
    _repeat_stop_arg(c)
    b = sub.add_parser("batch", help="generate for every record of a JSONL file (resumable)")
    _sampling_args(b)
    b.add_argument("--input", required=True, help='JSONL: {"prompt"} or {"messages"}, '
                   'optional "id", "max_tokens", "json_schema"')
    b.add_argument("--output", required=True, help="JSONL results, appended as they finish; "
                   "rerun the same command to resume")
    b.add_argument("--batch-size", type=int, default=16)
    b.add_argument("--json-schema", metavar="SCHEMA", help="for every record without its own")
    b.add_argument("--kv-budget", type=float, metavar="GB",
                   help="bound the KV memory of the running sequences")
    add_serve_args(sub.add_parser("serve", help="an OpenAI-compatible server with a chat page"))
    add_convert_args(sub.add_parser("convert", help="convert an HF checkpoint or GGUF file to MLX"))
    add_lora_args(sub.add_parser("lora", help="LoRA / QLoRA fine-tuning"))
    add_shield_args(sub.add_parser("shield", help="ShieldGemma 2: how likely images violate "
                                "safety policies"))
    add_fuse_args(sub.add_parser("fuse", help="fold LoRA adapters into the model and save it"))
    return ap


def _sampling_kwargs(args: argparse.Namespace, defaults: dict | None = None) -> dict:
    """The sampling flags, each unset one from `defaults` (greedy when there are none)."""
    d = defaults or {"temperature": 0.0, "top_k": 0, "top_p": 1.0}
    pick = {"temperature": args.temp, "top_k": args.top_k, "top_p": args.top_p}
    chosen = {k: d[k] if v is None else v for k, v in pick.items()}
    return dict(
        max_tokens=args.max_tokens, **chosen,
        min_p=args.min_p, repetition_penalty=args.repetition_penalty, seed=args.seed,
        kv_bits=args.kv_bits, prefill_step_size=args.prefill_step_size,
        pan_and_scan=args.pan_and_scan,
    )


def _model_sampling(args: argparse.Namespace) -> dict:
    """generate and chat sample as the checkpoint says, like transformers and Ollama: a
    greedy base model loops on one sentence (and --temp 0 still asks for that)."""
    from .generation.loops import sampling_defaults

    p = Path(args.model_path)
    return sampling_defaults(p if p.is_dir() else None)


def _loop_note(tokens: list[int], args: argparse.Namespace) -> int:
    """The repeated block's length when generation should stop for it (0 to go on)."""
    from .generation.loops import repeating

    return repeating(tokens) if args.repeat_stop else 0


def _speculative_kwargs(args: argparse.Namespace, model, tokenizer) -> dict:
    """The draft model (loaded and checked against the model's vocabulary) or prompt lookup."""
    if not (args.draft_model or args.prompt_lookup):
        if args.num_draft_tokens is not None:
            raise GemmaError("--num-draft-tokens needs --draft-model or --prompt-lookup")
        return {}
    kw = dict(num_draft_tokens=args.num_draft_tokens, prompt_lookup=args.prompt_lookup)
    if args.draft_model:
        from .formats.loading import load
        from .generation.speculative import check_draft_model

        draft, draft_tokenizer = load(args.draft_model, progress=True)
        check_draft_model(model, tokenizer, draft, draft_tokenizer)
        kw["draft_model"] = draft
    return kw


def _json_arg(value: str, flag: str):
    """Inline JSON, or the JSON in the file it names."""
    import json

    text = value
    if not value.lstrip().startswith(("{", "[")):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as e:
            raise GemmaError(f"{flag}: {value}: cannot be read ({e.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise GemmaError(f"{flag}: {value}: not valid JSON ({e})") from None


def _constraint_kwargs(args: argparse.Namespace) -> dict:
    kwargs: dict = {}
    if args.json_schema is not None:
        kwargs["json_schema"] = _json_arg(args.json_schema, "--json-schema")
    if args.regex is not None:
        kwargs["regex"] = args.regex
    if args.grammar is not None:
        try:
            kwargs["grammar"] = Path(args.grammar).read_text(encoding="utf-8")
        except OSError as e:
            raise GemmaError(f"--grammar: {args.grammar}: cannot be read ({e.strerror})") from None
    if args.tools is not None:
        kwargs["tools"] = _json_arg(args.tools, "--tools")
        choice = args.tool_choice
        if choice not in ("auto", "none", "required"):
            choice = {"type": "function", "function": {"name": choice}}
        kwargs["tool_choice"] = choice
    return kwargs


def run_generate(args: argparse.Namespace) -> None:
    import json

    from .generation.generate import stream_generate
    from .prompt import with_video_markers

    model, tokenizer = load_model(args)
    prompt = args.prompt
    constrained = _constraint_kwargs(args)
    kwargs = {**_sampling_kwargs(args, _model_sampling(args)), **constrained,
              **_speculative_kwargs(args, model, tokenizer)}
    if not args.raw_prompt and (args.chat_template or args.system or args.image or args.tools
                                or args.video):
        messages = [{"role": "system", "content": args.system}] if args.system else []
        content = [{"type": k} for k in ["image"] * len(args.image) + ["video"] * len(args.video)]
        content = with_video_markers([{"content": content}])[0]["content"]
        content.append({"type": "text", "text": prompt})
        prompt = tokenizer.apply_chat_template(messages + [{"role": "user", "content": content}],
                                               tools=kwargs.get("tools"), tokenize=False)
    last, drafted, tokens, period = None, 0, [], 0
    for last in stream_generate(model, tokenizer, prompt, images=args.image, videos=args.video,
                                video_fps=args.video_fps, max_frames=args.max_frames, **kwargs):
        print(last.text, end="", flush=True)
        drafted += last.from_draft
        tokens.append(last.token)
        if not constrained and (period := _loop_note(tokens, args)):
            break
    if period:
        print(f"\n[stopped: the output repeats a block of {period} tokens; "
              "--no-repeat-stop goes on]", end="")
    if last is not None and last.tool_calls:
        print("\n" + json.dumps({"tool_calls": last.tool_calls}, indent=2, ensure_ascii=False))
    if last is not None and last.finish_reason == "length" and constrained:
        print(f"\ngemma-mlx: warning: stopped at --max-tokens {args.max_tokens} before the "
              "constrained output was complete", file=sys.stderr)
    if last is not None:
        print("\n" + "=" * 10)
        print(f"Prompt: {last.prompt_tokens} tokens, {last.prompt_tps:.3f} tokens-per-sec")
        print(f"Generation: {last.generation_tokens} tokens, "
              f"{last.generation_tps:.3f} tokens-per-sec")
        if args.draft_model or args.prompt_lookup:
            print(f"Drafts accepted: {drafted} of {last.generation_tokens} tokens "
                  f"({100 * drafted / last.generation_tokens:.0f}%)")
        print(f"Peak memory: {last.peak_memory:.3f} GB")


def run_batch(args: argparse.Namespace) -> None:
    from .generation.batch_job import run_batch_job

    model, tokenizer = load_model(args)
    schema = _json_arg(args.json_schema, "--json-schema") if args.json_schema else None
    kw = _sampling_kwargs(args)
    counts = run_batch_job(
        model, tokenizer, args.input, args.output, batch_size=args.batch_size,
        json_schema=schema, max_tokens=kw["max_tokens"], temperature=kw["temperature"],
        top_p=kw["top_p"], top_k=kw["top_k"], min_p=kw["min_p"],
        repetition_penalty=kw["repetition_penalty"], prefill_step_size=kw["prefill_step_size"],
        kv_bits=kw["kv_bits"], kv_budget=int(args.kv_budget * 1e9) if args.kv_budget else None,
        seed=args.seed,
    )
    print(f"Wrote {counts['written']} records ({counts['errors']} errors, {counts['skipped']} "
          f"already done) to {args.output}", file=sys.stderr)


def _attach(line: str, args: argparse.Namespace, media: list, pending: list) -> None:
    """/image PATH or /video PATH: read now (a video sampled and decoded), not after the next
    message, and added to `pending` as (kind, path or Video)."""
    from .media.image_processing import load_image
    from .media.video import load_video

    kind, path = line[1:6], line[6:].strip()
    try:
        if kind == "image":
            load_image(path)
            item = path
        else:
            item = load_video(path, args.video_fps, args.max_frames)
    except GemmaError as e:
        print(f"error: {e}")
        return
    pending.append((kind, item))
    n = sum(k == kind for k, _ in media + pending)
    frames = f" as {len(item.times)} frames, {item.labels()[0][9:-1]} to " \
             f"{item.labels()[-1][9:-1]}" if kind == "video" else ""
    print(f"[{kind} {n} attached to your next message{frames}]")


def run_chat(args: argparse.Namespace) -> None:
    from .generation.generate import stream_generate
    from .prompt import with_video_markers
    from .serve.prefix_cache import PrefixCache

    model, tokenizer = load_model(args)
    speculative = _speculative_kwargs(args, model, tokenizer)
    sampling = _sampling_kwargs(args, _model_sampling(args))
    cache = PrefixCache(2 << 30)  # each turn prefills only its new tokens
    system = [{"role": "system", "content": args.system}] if args.system else []
    history: list[dict] = []
    media: list[tuple[str, object]] = []  # every image and video of the conversation, in order
    pending: list[tuple[str, object]] = []  # those for the next message
    print("Chat with Gemma. /image PATH or /video PATH adds an image or a video to your next "
          "message, /reset clears the history, /exit (or Ctrl-D) quits.")
    while True:
        try:
            line = input(">> ").strip()
        except EOFError:
            print()
            return
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            history, media, pending = [], [], []
            cache.clear()
            continue
        if line.startswith(("/image", "/video")):
            _attach(line, args, media, pending)
            continue
        if not line:
            continue
        content = [{"type": k} for k, _ in pending] + [{"type": "text", "text": line}]
        history.append({"role": "user", "content": content})
        media, added, pending = media + pending, len(pending), []
        prompt = tokenizer.apply_chat_template(with_video_markers(system + history),
                                               tokenize=False)
        reply, tokens = [], []
        try:
            for r in stream_generate(model, tokenizer, prompt,
                                     images=[x for k, x in media if k == "image"],
                                     videos=[x for k, x in media if k == "video"],
                                     prompt_cache=cache, **sampling, **speculative):
                print(r.text, end="", flush=True)
                reply.append(r.text)
                tokens.append(r.token)
                if _loop_note(tokens, args):
                    print(" [stopped: repeating]", end="")
                    break
        except GemmaError as e:  # e.g. images on a text-only model: drop the turn, go on
            print(f"error: {e}")
            history.pop()
            media = media[: len(media) - added]
            continue
        print()
        history.append({"role": "assistant", "content": "".join(reply)})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "int8_activations", False):
        from .kernels import cpu_qmm

        cpu_qmm.set_int8_activations(True)
    commands = {"generate": run_generate, "chat": run_chat, "batch": run_batch,
                "serve": run_serve,
                "convert": run_convert,
                "lora": run_lora, "fuse": run_fuse, "shield": run_shield}
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
