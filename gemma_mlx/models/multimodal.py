"""Gemma 3 with images: SigLIP tower, projector, and the text decoder with image-block attention."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..attention import image_blocks
from ..cache import Cache
from ..config import ModelConfig
from ..errors import GemmaError
from .layers import RMSNorm
from .text import Gemma3ForCausalLM
from .vision import VisionConfig, VisionTower

IMAGE_CACHE = 16
_PREFIXES = (("vision_tower.", "vision_tower."), ("model.vision_tower.", "vision_tower."),
             ("multi_modal_projector.", "multi_modal_projector."),
             ("model.multi_modal_projector.", "multi_modal_projector."))


class MultiModalProjector(nn.Module):
    """Average-pool the patch grid to mm_tokens_per_image, RMSNorm (1 + w), then x @ W."""

    def __init__(self, vision: VisionConfig, text_hidden: int, tokens_per_image: int):
        super().__init__()
        side = int(round(tokens_per_image**0.5))
        if side * side != tokens_per_image or vision.patches_per_side % side:
            raise GemmaError(f"mm_tokens_per_image {tokens_per_image} must be a square that "
                             f"divides the {vision.patches_per_side}^2 patch grid")
        self.side, self.kernel = side, vision.patches_per_side // side
        self.mm_soft_emb_norm = RMSNorm(vision.hidden_size, vision.layer_norm_eps)
        self.mm_input_projection_weight = mx.zeros((vision.hidden_size, text_hidden))

    def __call__(self, x: mx.array) -> mx.array:
        n, _, h = x.shape
        s, k = self.side, self.kernel
        x = x.reshape(n, s, k, s, k, h).mean(axis=(2, 4)).reshape(n, s * s, h)
        x = self.mm_soft_emb_norm(x)
        return x @ self.mm_input_projection_weight.astype(x.dtype)


class Gemma3ForConditionalGeneration(Gemma3ForCausalLM):
    """The text model (same names and API as Gemma3ForCausalLM) plus the vision path.

    `model(input_ids, pixel_values=...)` returns logits; image rows are the positions of
    `image_token_index` in input_ids, one block of mm_tokens_per_image per image.
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config.text)
        raw = config.raw
        self.vision_config = VisionConfig.from_dict(config.vision or {},
                                                    "config.json vision_config")
        self.image_token_index = int(raw.get("image_token_index", 262144))
        self.boi_token_index = int(raw.get("boi_token_index", 255999))
        self.eoi_token_index = int(raw.get("eoi_token_index", 256000))
        self.mm_tokens_per_image = int(raw.get("mm_tokens_per_image", 256))
        self.vision_tower = VisionTower(self.vision_config)
        self.multi_modal_projector = MultiModalProjector(
            self.vision_config, config.text.hidden_size, self.mm_tokens_per_image
        )

    def get_image_features(self, pixel_values: mx.array) -> mx.array:
        """[N, 3, H, W] -> [N, mm_tokens_per_image, text hidden]."""
        return self.multi_modal_projector(self.vision_tower(pixel_values))

    def encode_images(self, pixel_values: mx.array) -> mx.array:
        """get_image_features one image at a time, each evaluated before the next, so the
        tower's peak memory is one image's whatever the count (inference only).

        The last IMAGE_CACHE images' features are kept, keyed by their pixels: a chat resends
        every image of the conversation each turn, and the tower is the costly part.
        """
        cache = self.__dict__.setdefault("_image_cache", OrderedDict())
        feats = []
        for i in range(pixel_values.shape[0]):
            pixels = pixel_values[i : i + 1]
            key = hashlib.blake2b(np.asarray(pixels.astype(mx.float32)).tobytes()).digest()
            if key not in cache:
                cache[key] = self.get_image_features(pixels)
                mx.eval(cache[key])
                while len(cache) > IMAGE_CACHE:
                    cache.popitem(last=False)
            cache.move_to_end(key)
            feats.append(cache[key])
        return mx.concatenate(feats)

    def embed(
        self, input_ids: mx.array, pixel_values: mx.array | None = None,
        image_features: mx.array | None = None,
    ) -> mx.array:
        """Scaled text embeddings with the image rows replaced, unscaled, by image features.

        Give `pixel_values` or precomputed `image_features` ([N, T, hidden]) in prompt order.
        """
        ids = np.asarray(input_ids)
        is_image = ids == self.image_token_index
        safe = mx.where(mx.array(is_image), 0, input_ids)  # the id may lie past the vocabulary
        h = self.model.embed(safe)
        n_tokens = int(is_image.sum())
        if image_features is None and pixel_values is not None:
            image_features = self.get_image_features(pixel_values)
        n_images = 0 if image_features is None else image_features.shape[0]
        if n_tokens != n_images * self.mm_tokens_per_image:
            raise GemmaError(
                f"the prompt has {n_tokens} image tokens but {n_images} image(s) were given "
                f"({self.mm_tokens_per_image} tokens each)")
        if not n_tokens:
            return h
        b, length, d = h.shape
        rows = mx.array(np.flatnonzero(is_image.reshape(-1)))
        h = h.reshape(b * length, d)
        h[rows] = image_features.reshape(-1, d).astype(h.dtype)
        return h.reshape(b, length, d)

    def __call__(
        self,
        input_ids: mx.array | None,
        cache: list[Cache] | None = None,
        input_embeddings: mx.array | None = None,
        pixel_values: mx.array | None = None,
    ) -> mx.array:
        if input_embeddings is None and input_ids is not None:
            input_embeddings = self.embed(input_ids, pixel_values)
        blocks = None
        if input_ids is not None:
            offset = cache[0].offset if cache else 0
            blocks = image_blocks(np.asarray(input_ids), self.image_token_index, offset)
        h = self.model(None, cache, input_embeddings, image_blocks=blocks)
        return self.logits(h)

    def sanitize(self, weights: dict[str, Any]) -> dict[str, Any]:
        out = super().sanitize(weights)
        for key, value in weights.items():
            name = multimodal_key(key)
            if name is not None:
                _, value = VisionTower.sanitize_key(name, value)
                out[name] = value
        return out


def multimodal_key(key: str) -> str | None:
    """This model's name for a vision or projector key of any known layout, else None."""
    for prefix, own in _PREFIXES:
        if key.startswith(prefix):
            rest = key[len(prefix):]
            if own == "vision_tower." and rest.startswith("vision_model."):
                rest = rest[len("vision_model."):]
            return own + rest
    return None
