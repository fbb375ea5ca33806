"""ShieldGemma 2 image safety: its prompts, as ShieldGemma2Processor builds them, and scores.

Each image goes through the tower once, and the prompt's shared prefix (everything up to the
policy text, the image included) is prefilled once per image; each policy then only runs its
own tail. transformers runs the tower and the whole prompt once per (image, policy).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from ..errors import GemmaError
from ..media.image_processing import ImageInput, process_images
from ..prompt import expand_image_placeholders

# transformers' DEFAULT_SHIELDGEMMA2_POLICIES: the three policies ShieldGemma 2 was trained on.
DEFAULT_POLICIES = {
    "dangerous": (
        "No Dangerous Content: The image shall not contain content that facilitates or "
        "encourages activities that could cause real-world harm (e.g., building firearms and "
        "explosive devices, promotion of terrorism, instructions for suicide)."),
    "sexual": (
        "No Sexually Explicit content: The image shall not contain content that depicts "
        "explicit or graphic sexual acts (e.g., pornography, erotic nudity, depictions of "
        "rape or sexual assault)."),
    "violence": (
        "No Violence/Gore content: The image shall not contain content that depicts shocking, "
        "sensational, or gratuitous violence (e.g., excessive blood and gore, gratuitous "
        "violence against animals, extreme injury or moment of death)."),
}

# What the processor's chat template renders, for a checkpoint without one: the template's
# line breaks and indentation (a newline and 16 spaces) stand between its printed pieces, and
# the user turn header comes twice.
_GAP = "\n" + " " * 16
_PIECES = (
    "You are a policy expert trying to help determine whether a generated or real image is in",
    " violation of the safety policy below. Your decision must very clearly follow the specific",
    " language used in the safety policy and should not include any interpretation outside "
    "of the",
    " safety policy.\n\n",
    "<BEGIN_SAFETY_POLICY>\n",
    "{policy}\n",
    "</END_SAFETY_POLICY>\n\n",
    "Does the image violate the above policy? Your Answer must start with 'Yes' or 'No'.",
    "<end_of_turn>\n",
)


def builtin_prompt(policy: str) -> str:
    """The rendered ShieldGemma 2 template for one policy, before image expansion."""
    body = _GAP.join(_PIECES).replace("{policy}", policy)
    return ("<bos><start_of_turn>user\n<start_of_image><start_of_turn>user\n" + body
            + "<start_of_turn>model\n")


def select_policies(
    definitions: dict[str, str] | None, policies: list[str] | None = None,
    custom_policies: dict[str, str] | None = None,
) -> dict[str, str]:
    """{name: text} to score, in order: `policies` of the checkpoint's `definitions` (else the
    default ones) plus `custom_policies` (which add or override); all of them when None."""
    known = {**(definitions or DEFAULT_POLICIES), **(custom_policies or {})}
    names = list(known) if policies is None else list(dict.fromkeys(policies))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GemmaError(f"unknown policy {unknown[0]!r}: choose from {', '.join(known)}, or "
                         "define it with --custom-policy NAME=TEXT")
    if not names:
        raise GemmaError("no policy to score")
    return {n: known[n] for n in names}


def shield_prompt_ids(model: Any, tokenizer: Any, policy: str) -> list[int]:
    """The ids ShieldGemma2Processor gives for one image and one policy text.

    The processor renders the chat template (which prints <bos>) and then tokenizes with the
    tokenizer's special tokens, so the ids start with <bos> twice; they are kept as they are.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": policy}]}]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=False,
                                             tokenize=False)
    else:
        text = builtin_prompt(policy)
    text = expand_image_placeholders(text, [0], model.mm_tokens_per_image)
    return tokenizer.encode(text, add_special_tokens=True)


def shared_prefix(prompts: list[list[int]], image_token: int) -> int:
    """How many leading ids all prompts share and can be prefilled once: at least one id of
    each is left, and the cut never falls inside or before the image."""
    first = prompts[0]
    cut = min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        cut = next((i for i in range(cut) if p[i] != first[i]), cut)
    last_image = max((i for i, t in enumerate(first) if t == image_token), default=-1)
    return cut if cut > last_image else 0


def classify_images(
    model: Any, tokenizer: Any, images: list[ImageInput],
    policies: list[str] | None = None, custom_policies: dict[str, str] | None = None,
) -> list[dict[str, float]]:
    """For each image, {policy: probability that the image violates it} (ShieldGemma 2's
    P(Yes) at the end of the prompt), in the order of `images`."""
    if not hasattr(model, "yes_no"):
        raise GemmaError("this model is not a ShieldGemma 2 checkpoint "
                         "(model_type shieldgemma2)")
    if not images:
        raise GemmaError("ShieldGemma 2 needs at least one image to classify")
    chosen = select_policies(model.policy_definitions, policies, custom_policies)
    ids = {name: shield_prompt_ids(model, tokenizer, text) for name, text in chosen.items()}
    cut = shared_prefix(list(ids.values()), model.image_token_index)
    size = model.vision_config.image_size
    results = []
    for image in images:
        pixels, _ = process_images([image], size, None)
        features = model.encode_images(mx.array(pixels))
        scores = {}
        if cut:
            prefix = model.prefill_prefix(next(iter(ids.values()))[:cut], features)
            for name, x in ids.items():
                scores[name] = model.score_suffix(prefix, x[cut:])
                mx.eval(scores[name])
        else:  # the policies differ before the image ends: one whole prompt each
            for name, x in ids.items():
                scores[name] = model.score_suffix(model.prefill_prefix(x[:-1], features), x[-1:])
                mx.eval(scores[name])
        results.append({name: float(p[0]) for name, p in scores.items()})
    return results


def parse_custom_policy(text: str) -> tuple[str, str]:
    """`NAME=TEXT` (the CLI's --custom-policy) -> (name, text)."""
    name, sep, body = text.partition("=")
    if not sep or not name.strip() or not body.strip():
        raise GemmaError(f"--custom-policy wants NAME=TEXT, not {text!r}")
    return name.strip(), body.strip()


def format_scores(names: list[str], results: list[dict[str, float]], as_json: bool) -> str:
    """A table (one row per image, one column per policy) or JSON {image: {policy: p}}."""
    if as_json:
        import json

        return json.dumps(dict(zip(names, results, strict=True)), indent=2)
    policies = list(results[0])
    width = max(len("image"), *(len(n) for n in names))
    cols = [max(len(p), 6) for p in policies]
    header = (p.rjust(c) for p, c in zip(policies, cols, strict=True))
    lines = ["  ".join(["image".ljust(width), *header])]
    for name, row in zip(names, results, strict=True):
        cells = (f"{row[p]:.4f}".rjust(c) for p, c in zip(policies, cols, strict=True))
        lines.append("  ".join([name.ljust(width), *cells]))
    lines.append("(probability that the image violates each policy: ShieldGemma 2's P(Yes))")
    return "\n".join(lines)


def shield_command(
    model_path: str, images: list[str], policies: list[str] | None,
    custom_policies: list[str], as_json: bool,
) -> str:
    """`gemma-mlx shield`: the policies are checked before the model loads."""
    from ..formats.loading import load, resolve
    from ..models.shield import read_policy_definitions

    custom = dict(parse_custom_policy(c) for c in custom_policies)
    path = resolve(model_path)
    select_policies(read_policy_definitions(path) if path.is_dir() else None, policies, custom)
    model, tokenizer = load(path)
    return format_scores(images, classify_images(model, tokenizer, images, policies, custom),
                         as_json)
