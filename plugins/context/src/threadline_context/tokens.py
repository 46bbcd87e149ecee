"""How many tokens a message takes, estimated without a tokenizer: about four characters of
text a token (the rule of thumb OpenAI, Anthropic and Google give for English), plus a few
for the message's framing. It errs high on code and non-Latin text less than on prose, so
leave the window some room (``window_fraction``)."""

from __future__ import annotations

import json
from typing import Final

from threadline.plugin import File, Message, Part, Text, ToolCall, ToolResult

CHARACTERS_PER_TOKEN: Final = 4
PER_MESSAGE: Final = 4  # the role and the framing around it
PER_IMAGE: Final = 1_000  # a large image's tokens on most models; a small one takes fewer


def estimate(text: str) -> int:
    """Tokens of ``text``: one per four characters, rounded up."""
    return -(-len(text) // CHARACTERS_PER_TOKEN)


def message_tokens(message: Message) -> int:
    """Tokens of one message as a request sends it."""
    return PER_MESSAGE + sum(_part_tokens(part) for part in message.parts)


def _part_tokens(part: Part) -> int:
    if isinstance(part, Text):
        return estimate(part.text)
    if isinstance(part, ToolCall):
        return estimate(part.name) + estimate(json.dumps(dict(part.arguments), ensure_ascii=False))
    if isinstance(part, ToolResult):
        return estimate(part.content)
    if isinstance(part, File) and part.data is not None:
        return -(-len(part.data) // CHARACTERS_PER_TOKEN)  # a byte a character: high for a PDF's compressed pages
    return PER_IMAGE  # an image, or a file sent by URL
