"""A stream's text let out, rewritten, as far as more text cannot change it: the tail that
could still be part of a value (``ann.lee@exa``) or of a pseudonym token (``<EMAI``) is held
back until the next piece settles it, and no longer."""

from __future__ import annotations

from collections.abc import Callable

from attrs import define

#: characters already let out that a rewrite still sees, as a match's surroundings (``\b``,
#: a lookbehind); none of them is let out again
CONTEXT = 32

#: a tail longer than this is not held any longer: no value is this long, and holding more
#: would make each piece cost more than the one before (a long base64 blob)
MAX_HOLD = 4096
#: what a stream shows for what was held back longer than that, which might be a value; the
#: run without a space it ends in is dropped to its end
TOO_LONG = "[TOO_LONG]"

#: ``(text, start, final)`` -> the rewritten ``text[start:cut]`` and ``cut``, where the text
#: that must wait starts (with ``final``, the end: no more is coming)
Split = Callable[[str, int, bool], tuple[str, int]]


@define
class Holdback:
    split: Split
    #: the raw text let out last, up to ``CONTEXT`` characters of it
    context: str = ""
    held: str = ""
    #: in a run that grew too long to hold: its pieces are dropped until a space ends it
    dropping: bool = False

    def feed(self, piece: str) -> str:
        """``piece`` arrived: what of the stream can go out now, rewritten."""
        if self.dropping:
            piece = self._after_run(piece)
        text = self.context + self.held + piece
        start = len(self.context)
        ready, cut = self.split(text, start, False)
        if len(text) - cut > MAX_HOLD:  # what waits may be a value cut short: none of it goes out
            ready += TOO_LONG
            self.dropping = not text[-1].isspace()
            cut = len(text)
        self.context, self.held = text[:cut][-CONTEXT:], text[cut:]
        return ready

    def end(self) -> str:
        """The stream ended: the rest, rewritten."""
        ready, _ = self.split(self.context + self.held, len(self.context), True)
        self.context = self.held = ""
        return ready

    def _after_run(self, piece: str) -> str:
        """What of ``piece`` follows the run being dropped."""
        end = next((i for i, c in enumerate(piece) if c.isspace()), None)
        if end is None:
            return ""
        self.dropping, self.context = False, ""
        return piece[end:]
