"""Context windows of the models the plugin knows, in tokens, by model name (``*`` matches
any text; the first pattern that matches wins). ``[middleware.context] windows`` adds to
them and goes first. Providers publish these on their model pages; a model missing here is
sent its history whole unless ``max_tokens`` is set."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Final

KNOWN: Final[Mapping[str, int]] = {
    # OpenAI
    "gpt-4.1*": 1_047_576,
    "gpt-4o*": 128_000,
    "gpt-4-turbo*": 128_000,
    "o1*": 200_000,
    "o3*": 200_000,
    "o4-mini*": 200_000,
    # Anthropic
    "claude-*": 200_000,
    # Google
    "gemini-1.5-pro*": 2_097_152,
    "gemini-1.5-flash*": 1_048_576,
    "gemini-2.0-*": 1_048_576,
    "gemini-2.5-*": 1_048_576,
}


def window_of(model: str | None, configured: Mapping[str, int]) -> int | None:
    """The context window of ``model``: from ``configured`` first, then :data:`KNOWN`."""
    if model is None:
        return None
    for table in (configured, KNOWN):
        for pattern, tokens in table.items():
            if fnmatchcase(model, pattern):
                return tokens
    return None
