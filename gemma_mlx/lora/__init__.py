"""LoRA and QLoRA fine-tuning: adapter layers, datasets, chunked loss, trainer, fuse."""
