"""Checkpoint formats: GGUF, safetensors loading and saving, conversion, quantization."""
