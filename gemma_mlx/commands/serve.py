"""gemma-mlx serve: the OpenAI-compatible server's flags."""

from __future__ import annotations

import argparse

from .args import bounded, force_arg, int8_arg
from .load import load_model


def add_serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint to serve (default: the embedded 270M)")
    p.add_argument("--adapter-path", help="LoRA adapters saved by gemma-mlx lora")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--api-key", help="require Authorization: Bearer KEY (not on /health)")
    p.add_argument("--max-concurrency", type=bounded(int, 1), default=8,
                   help="sequences decoding at once")
    p.add_argument("--max-queue", type=bounded(int, 0), default=64,
                   help="requests waiting; past that, 429 with Retry-After")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from this origin (repeatable; default: none)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="another Host header to accept on loopback (repeatable)")
    p.add_argument("--max-body-mb", type=bounded(float, 0, strict=True), default=32.0)
    p.add_argument("--request-timeout", type=bounded(float, 0, strict=True), default=600.0,
                   metavar="SECONDS")
    p.add_argument("--watchdog-s", type=bounded(float, 0, strict=True), default=120.0,
                   metavar="SECONDS",
                   help="/health answers 503 after this long without progress")
    p.add_argument("--cache-gb", type=bounded(float, 0), default=2.0,
                   help="prefix-cache memory for multi-turn reuse (0 turns it off)")
    p.add_argument("--metrics", action="store_true", help="serve Prometheus /metrics")
    p.add_argument("--media-dir", help="allow file:// images from this directory")
    p.add_argument("--kv-bits", type=int, choices=[4, 8], default=None)
    p.add_argument("--prefill-step-size", type=int, default=512)
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    int8_arg(p)
    force_arg(p)


def run_serve(args: argparse.Namespace) -> None:
    from ..serve.app import Settings
    from ..serve.run import model_name, serve

    model, tokenizer = load_model(args)
    settings = Settings(
        model_id=model_name(args.model), api_key=args.api_key, host=args.host,
        allowed_hosts=args.allowed_host, cors_origins=args.cors_origin,
        max_concurrency=args.max_concurrency, max_queue=args.max_queue,
        max_body_mb=args.max_body_mb, request_timeout=args.request_timeout,
        watchdog_s=args.watchdog_s,
        cache_gb=args.cache_gb, metrics=args.metrics, media_dir=args.media_dir,
        kv_bits=args.kv_bits, prefill_step_size=args.prefill_step_size)
    serve(model, tokenizer, settings, args.port, args.log_level)
