"""Custom Metal kernels for attention, each with an MLX-op fallback."""
