"""ShieldGemma 2: Gemma 3 4B with images, read out as P(Yes) over the Yes/No logits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from ..attention import image_blocks
from ..cache import Cache, copy_cache
from ..config import ModelConfig
from ..errors import GemmaError
from .multimodal import Gemma3ForConditionalGeneration

# transformers' defaults (ShieldGemma2ForImageClassification reads them with getattr)
YES_TOKEN_INDEX, NO_TOKEN_INDEX = 10784, 3771
_NESTED = ("model.", "language_model.model.", "lm_head.")


def shield_key(key: str) -> str:
    """A ShieldGemma 2 key with the wrapper's `model.` prefixes removed.

    transformers keeps the Gemma 3 model under `model.`: in memory `model.model.language_model.*`,
    and 5.x `save_pretrained` writes `model.model.language_model.model.*`. Stripping `model.`
    while more nesting follows gives a Gemma 3 key of a known layout; `model.language_model.*`
    (Gemma 3's own in-memory names) and the hub names are left as they are.
    """
    while key.startswith("model.") and key[len("model."):].startswith(_NESTED):
        key = key[len("model."):]
    return key


class ShieldGemma2ForImageClassification(Gemma3ForConditionalGeneration):
    """Gemma3ForConditionalGeneration plus `classify`: the last position's P(Yes), P(No)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        raw = config.raw
        self.yes_token_index = int(raw.get("yes_token_index", YES_TOKEN_INDEX))
        self.no_token_index = int(raw.get("no_token_index", NO_TOKEN_INDEX))
        self.policy_definitions: dict[str, str] | None = None  # processor_config.json's

    def yes_no(self, h_last: mx.array) -> mx.array:
        """Final hidden states [N, hidden] -> softmax over (Yes, No) logits [N, 2], float32.

        Index 0 is Yes: the image violates the policy (as transformers' code takes it).
        """
        logits = self.logits(h_last[:, None, :])[:, 0]
        pair = logits[:, [self.yes_token_index, self.no_token_index]].astype(mx.float32)
        return mx.softmax(pair, axis=-1)

    def prefill_prefix(self, ids: list[int], image_features: mx.array) -> list[Cache]:
        """The KV caches after `ids` (which hold one image's tokens), to share across policies."""
        cache = self.make_cache()
        emb = self.embed(mx.array([ids]), image_features=image_features)
        blocks = image_blocks(np.asarray([ids]), self.image_token_index)
        self.model(None, cache, emb, image_blocks=blocks)
        mx.eval([c.state for c in cache])
        return cache

    def score_suffix(self, prefix: list[Cache], ids: list[int]) -> mx.array:
        """P(Yes), P(No) [2] after the text `ids` that follow a shared prefix (its caches,
        left untouched)."""
        cache = [copy_cache(c) for c in prefix]
        h = self.model(mx.array([ids]), cache)
        return self.yes_no(h[:, -1, :])[0]

    def sanitize(self, weights: dict[str, Any]) -> dict[str, Any]:
        return super().sanitize({shield_key(k): v for k, v in weights.items()})



def read_policy_definitions(path: Path) -> dict[str, str] | None:
    """processor_config.json's `policy_definitions` ({name: text}), or None without one."""
    file = path / "processor_config.json"
    if not file.is_file():
        return None
    try:
        policies = json.loads(file.read_text(encoding="utf-8")).get("policy_definitions")
    except (ValueError, AttributeError, RecursionError) as e:
        raise GemmaError(f"{file}: not a JSON object ({str(e)[:200]})") from None
    if policies is None:
        return None
    if not isinstance(policies, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in policies.items()):
        raise GemmaError(f"{file}: policy_definitions must map names to texts")
    return dict(policies)
