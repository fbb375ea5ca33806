"""Gemma's SentencePiece tokenizer: from tokenizer.model, tokenizer.json or a GGUF vocabulary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import GemmaError
from .chat_template import render_chat
from .jinja_template import knows_tools, read_chat_template, render_template

# GGUF token types (llama.cpp) equal SentencePiece's piece types.
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6
_ANGLE = re.compile(r"<[^<>\s]{1,64}>")
_BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")
# User-defined in the vocabulary, so not control tokens, but never text: grammars exclude them.
MARKERS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")


def spm_from_gguf_vocab(vocab: dict[str, Any]) -> bytes:
    """A serialized SentencePiece BPE model equivalent to a GGUF `llama` (SPM) vocabulary."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    if vocab.get("model") != "llama":
        raise GemmaError(f"GGUF tokenizer model {vocab.get('model')!r} is not SentencePiece")
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.vocab_size = len(vocab["tokens"])
    m.trainer_spec.unk_id = vocab["unknown_token_id"]
    m.trainer_spec.bos_id = vocab["bos_token_id"]
    m.trainer_spec.eos_id = vocab["eos_token_id"]
    m.trainer_spec.pad_id = 0
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = vocab.get("add_space_prefix", False)
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    unk = vocab["unknown_token_id"]
    rows = zip(vocab["tokens"], vocab["scores"], vocab["types"], strict=True)
    for i, (tok, score, kind) in enumerate(rows):
        if not _NORMAL <= kind <= _BYTE:
            raise GemmaError(f"GGUF vocabulary: token {i} ({tok!r}) has type {kind}, not one "
                             f"of SentencePiece's {_NORMAL}-{_BYTE}")
        piece = m.pieces.add()
        if kind == _USER_DEFINED:
            tok = tok.replace(" ", "\u2581")  # matched against the escaped text
        piece.piece, piece.score = tok, score
        piece.type = _UNKNOWN if i == unk else kind
    return m.SerializeToString()


class Tokenizer:
    """encode/decode/apply_chat_template over SentencePiece or a `tokenizers` tokenizer.json."""

    def __init__(self, sp: Any = None, hf: Any = None, model_proto: bytes | None = None):
        self._sp, self._hf, self._proto = sp, hf, model_proto
        if sp is not None:
            n = sp.get_piece_size()
            self._pieces = [sp.id_to_piece(i) for i in range(n)]
            control = {i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)}
        else:
            vocab = hf.get_vocab(with_added_tokens=True)
            self._pieces = [""] * (max(vocab.values()) + 1)
            for tok, i in vocab.items():
                self._pieces[i] = tok
            control = {i for i, t in hf.get_added_tokens_decoder().items() if t.special}
        self.special_ids = frozenset(control)
        self._special = {self._pieces[i]: i for i in control}
        self._angle_only = all(_ANGLE.fullmatch(s) for s in self._special)
        self.bos_token_id = self._special.get("<bos>", 2)
        self.eos_token_ids = {i for s in ("<eos>", "<end_of_turn>") if (i := self._special.get(s))}
        self.chat_template: str | None = None  # the checkpoint's jinja template, if it has one

    @classmethod
    def from_dir(cls, path: str | Path) -> Tokenizer | None:
        """tokenizer.model (preferred) or tokenizer.json in `path`; None if neither exists."""
        path = Path(path)
        if (path / "tokenizer.model").is_file():
            spm_file = path / "tokenizer.model"
            tokenizer = cls.from_spm_bytes(spm_file.read_bytes(), spm_file)
        elif (path / "tokenizer.json").is_file():
            from tokenizers import Tokenizer as HFTokenizer

            try:
                tokenizer = cls(hf=HFTokenizer.from_file(str(path / "tokenizer.json")))
            except Exception as e:
                raise GemmaError(f"{path / 'tokenizer.json'}: cannot be read ({e})") from None
        else:
            return None
        tokenizer.chat_template = read_chat_template(path)
        return tokenizer

    @classmethod
    def from_gguf_vocab(cls, vocab: dict[str, Any], source: str | Path = "GGUF") -> Tokenizer:
        """The tokenizer of a GGUF file's vocabulary, with its chat template if it has one."""
        tokenizer = cls.from_spm_bytes(spm_from_gguf_vocab(vocab), source)
        tokenizer.chat_template = vocab.get("chat_template")
        return tokenizer

    @classmethod
    def from_spm_bytes(cls, proto: bytes, source: str | Path = "tokenizer") -> Tokenizer:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor()
        try:
            sp.load_from_serialized_proto(proto)
            return cls(sp=sp, model_proto=proto)
        except Exception as e:  # a bad proto, or pieces that are not UTF-8
            raise GemmaError(f"{source}: not a SentencePiece model ({e})") from None

    def add_special_token(self, token: str, token_id: int) -> None:
        """Register a control token the vocabulary lacks, e.g. `<image_soft_token>` (262144),
        which the 4B-27B checkpoints add beyond the 262,144 SentencePiece pieces."""
        known = self.convert_tokens_to_ids(token)
        if known == token_id:
            return
        if self._hf is not None:
            from tokenizers import AddedToken

            self._hf.add_special_tokens([AddedToken(token, special=True)])
            if self._hf.token_to_id(token) != token_id:
                raise GemmaError(f"tokenizer: cannot give {token} the id {token_id}")
            return
        if token_id < len(self._pieces) and not self._sp.is_unknown(token_id):
            raise GemmaError(f"tokenizer: id {token_id} is already {self._pieces[token_id]!r}, "
                             f"not {token}")
        self._pieces += [""] * (token_id + 1 - len(self._pieces))
        self._pieces[token_id] = token
        self._special[token] = token_id
        self.special_ids = self.special_ids | {token_id}
        self._angle_only = self._angle_only and bool(_ANGLE.fullmatch(token))

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def pieces(self) -> list[str]:
        """The vocabulary, by id (SentencePiece pieces: spaces as U+2581)."""
        return self._pieces

    @property
    def marker_ids(self) -> set[int]:
        return {i for m in MARKERS if (i := self.convert_tokens_to_ids(m)) not in (None, 3)}

    def is_byte(self, token_id: int) -> bool:
        """Whether the piece is a byte-fallback piece such as <0x0A>."""
        if self._sp is not None and token_id < self._sp.get_piece_size():
            return self._sp.is_byte(token_id)
        return bool(_BYTE_PIECE.fullmatch(self._pieces[token_id]))

    def save(self, path: str | Path) -> None:
        """Write tokenizer.model (SentencePiece) or tokenizer.json into directory `path`."""
        if self._proto is not None:
            Path(path, "tokenizer.model").write_bytes(self._proto)
        else:
            self._hf.save(str(Path(path, "tokenizer.json")))
        if self.chat_template is not None:
            Path(path, "chat_template.jinja").write_text(self.chat_template, encoding="utf-8")

    def _split_special(self, text: str) -> list[str | int]:
        """Text pieces and the ids of control tokens written literally in the text."""
        if self._angle_only:
            spans = [m for m in _ANGLE.finditer(text) if m.group() in self._special]
        else:
            alt = "|".join(map(re.escape, sorted(self._special, key=len, reverse=True)))
            spans = list(re.finditer(alt, text))
        out: list[str | int] = []
        start = 0
        for m in spans:
            if m.start() > start:
                out.append(text[start : m.start()])
            out.append(self._special[m.group()])
            start = m.end()
        if start < len(text):
            out.append(text[start:])
        return out

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids; with `add_special_tokens`, starting with <bos>."""
        if self._hf is not None:
            return self._hf.encode(text, add_special_tokens=add_special_tokens).ids
        ids = [self.bos_token_id] if add_special_tokens else []
        for part in self._split_special(text):
            if isinstance(part, int):
                ids.append(part)
            else:
                ids.extend(self._sp.encode(part))
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in ids]
        if self._hf is not None:
            return self._hf.decode(ids, skip_special_tokens=skip_special_tokens)
        out, run = [], []
        size = self._sp.get_piece_size()
        for i in ids:
            if i in self.special_ids:
                out.append(self._sp.decode(run))
                run = []
                if not skip_special_tokens:
                    out.append(self._pieces[i])
            elif 0 <= i < size:  # ids past the vocabulary (4B-27B pad rows) decode to nothing,
                run.append(i)  # as `tokenizers` does, instead of raising
        out.append(self._sp.decode(run))
        return "".join(out)

    def _template_names(self) -> dict[str, str]:
        names = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                 "unk_token": "<unk>", "boi_token": "<start_of_image>",
                 "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
        if self.special_id("<start_function_response>") is not None:
            names["sfr_token"] = "<start_function_response>"
        return names

    def special_id(self, token: str) -> int | None:
        """The id of a control token by name, or None if the vocabulary has none."""
        return self._special.get(token)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        if token in self._special:
            return self._special[token]
        return self._sp.piece_to_id(token) if self._sp is not None else self._hf.token_to_id(token)

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        add_generation_prompt: bool = True,
        tokenize: bool = True,
        tools: list[dict] | None = None,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> list[int] | str:
        """The chat prompt as token ids (one <bos>) or, with tokenize=False, the text.

        The checkpoint's own template renders it (extra keyword arguments reach it, as in
        transformers), except where it cannot: the stock Gemma 3 template ignores `tools` and
        rejects tool turns, so those conversations use the built-in Gemma 3 tool format.
        """
        template = chat_template or self.chat_template
        has_tools = bool(tools) or any(m.get("role") == "tool" or m.get("tool_calls")
                                       for m in messages)
        if template and (knows_tools(template) or not has_tools):
            # as transformers: message keys set to None are dropped, special tokens by name
            messages = [{k: v for k, v in m.items() if v is not None} for m in messages]
            text = render_template(template, messages=messages, tools=tools, documents=None,
                                   add_generation_prompt=add_generation_prompt,
                                   **{**self._template_names(), **kwargs})
        elif has_tools and self.special_id("<start_function_call>") is not None:
            raise GemmaError("this FunctionGemma tokenizer has no chat template to declare "
                             "tools with (chat_template.jinja or tokenizer_config.json)")
        else:
            text = render_chat(messages, add_generation_prompt, tools=tools)
        return self.encode(text, add_special_tokens=False) if tokenize else text
