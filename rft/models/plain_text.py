"""Text that stays text: in a rendered chat template only the template's own markers become control tokens.

Everything a policy or a user writes (message text, tool-call names and arguments, the tool schemas a caller
of the OpenAI-compatible route sends) is tokenised as plain text: a `<|im_start|>` or `<|image_pad|>` inside
it becomes the ordinary tokens that spell it, never the control token, so it can neither open a turn nor
claim an image slot. A control token is any special token of the tokenizer, and every image token
(`VISION_TOKENS`) whether the tokenizer marks it special or not.

How: before rendering, each control string inside the inputs is hidden behind a run, of the same length, of
one private-use character that the inputs do not contain; after rendering, every control string left in the
text is the template's. The text is cut at those, and each piece between two of them is revealed and
tokenised with control tokens split (the tokenizers library's `encode_special_tokens`, which transformers
calls `split_special_tokens`). A tokenizer matches its added tokens before anything else and tokenises the
text between them piece by piece, so for text without control strings the ids are exactly those of the whole
text; hiding keeps lengths, so character offsets (the SFT assistant mask reads them) stay right.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tokenizers import AddedToken, Tokenizer

# Private-use code points: the basic plane's, then planes 15 and 16 (an input cannot hold them all).
_HIDING_POINTS = (range(0xE000, 0xF900), range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE))


class ControlTokenError(ValueError):
    """Text cannot be kept plain (the tokenizer still made a control token of it, or no character is free)."""


@dataclass(frozen=True)
class Hidden:
    """Inputs whose control strings are hidden, and the table back: hiding character -> control string."""

    value: Any
    table: dict[str, str]

    def reveal(self, text: str) -> str:
        """`text` with each run of a hiding character back as the control strings it stands for."""
        if not self.table:
            return text
        runs = re.compile("|".join(f"{re.escape(char)}+" for char in self.table))
        return runs.sub(self._control_strings, text)

    def _control_strings(self, run: re.Match[str]) -> str:
        control = self.table[run.group()[0]]
        return control * (len(run.group()) // len(control))


@dataclass(frozen=True)
class Encoded:
    """Token ids and each token's (start, end) character span in the rendered text."""

    ids: list[int]
    offsets: list[tuple[int, int]]


class PlainTextTokenizer:
    """Tokenises rendered templates so that only the template's own markers are control tokens."""

    def __init__(self, tokenizer: Any, image_tokens: Iterable[str]) -> None:
        vocab = tokenizer.get_vocab()
        special = [token.content for token in tokenizer.added_tokens_decoder.values() if token.special]
        self.control_ids = {token: vocab[token] for token in [*special, *image_tokens] if token in vocab}
        self._control_id_set = frozenset(self.control_ids.values())
        self._controls = re.compile(
            "|".join(re.escape(token) for token in sorted(self.control_ids, key=len, reverse=True)) or "(?!)"
        )
        # A copy of the fast tokenizer that splits every control token, image tokens included: a copy, because
        # transformers' `split_special_tokens` flips a flag on the shared tokenizer for each call.
        self._plain = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._plain.add_special_tokens([AddedToken(token, special=True) for token in self.control_ids])
        self._plain.encode_special_tokens = True
        self._plain.no_truncation()
        self._plain.no_padding()

    def hide(self, value: Any) -> Hidden:
        """`value` (messages, tool schemas: lists and dicts holding strings) with each control string in its
        strings, keys included, replaced by a same-length run of a character found nowhere in `value`."""
        used = set(itertools.chain.from_iterable(_strings(value)))
        free = (chr(point) for point in itertools.chain(*_HIDING_POINTS) if chr(point) not in used)
        char_of: dict[str, str] = {}

        def hide_one(match: re.Match[str]) -> str:
            control = match.group()
            if control not in char_of:
                char_of[control] = _next_free(free)
            return char_of[control] * len(control)

        hidden = _map_strings(value, lambda text: self._controls.sub(hide_one, text))
        return Hidden(hidden, {char: control for control, char in char_of.items()})

    def encode(self, rendered: str, hidden: Hidden) -> Encoded:
        """The ids of `rendered` (a template rendered from `hidden.value`): its control strings as control
        tokens, the text between them, revealed, as plain text."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        cursor = 0
        for match in self._controls.finditer(rendered):
            self._encode_text(hidden.reveal(rendered[cursor : match.start()]), cursor, ids, offsets)
            ids.append(self.control_ids[match.group()])
            offsets.append(match.span())
            cursor = match.end()
        self._encode_text(hidden.reveal(rendered[cursor:]), cursor, ids, offsets)
        return Encoded(ids, offsets)

    def _encode_text(self, text: str, start: int, ids: list[int], offsets: list[tuple[int, int]]) -> None:
        if not text:
            return
        encoding = self._plain.encode(text, add_special_tokens=False)
        made = self._control_id_set.intersection(encoding.ids)
        # Cannot happen with a tokenizer that honours encode_special_tokens; refuse rather than train on it.
        if made:
            raise ControlTokenError(
                f"the tokenizer made control token(s) {sorted(made)} of the text {text[:80]!r}"
            )
        ids += encoding.ids
        offsets += [(a + start, b + start) for a, b in encoding.offsets]


_BUILT: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], PlainTextTokenizer]] = (
    weakref.WeakKeyDictionary()
)


def plain_text_tokenizer(tokenizer: Any, image_tokens: Iterable[str]) -> PlainTextTokenizer:
    """The `PlainTextTokenizer` of `tokenizer`, built once: building copies the whole tokenizer (a fraction
    of a second for a 150k vocabulary), and the OpenAI-compatible route makes a ConversationTokenizer per
    request, on the server's event loop."""
    built = _BUILT.setdefault(tokenizer, {})
    key = tuple(image_tokens)
    if key not in built:
        built[key] = PlainTextTokenizer(tokenizer, key)
    return built[key]


def _next_free(free: Iterator[str]) -> str:
    char = next(free, None)
    if char is None:
        raise ControlTokenError(
            "the text holds every private-use character; none is left to hide control strings"
        )
    return char


def _strings(value: Any) -> Iterator[str]:
    """Every string inside `value`, dict keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to every string inside it (dict keys included); other leaves as they are."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {_map_strings(key, change): _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_map_strings(item, change) for item in value)
    return value
