"""Gemma 3 model definitions in MLX."""
