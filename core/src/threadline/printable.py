"""Text from a model or from storage, made safe to print on a terminal: a reply could carry
escape sequences that write the clipboard (OSC 52), hide links (OSC 8), retitle the window
or move the cursor, and printed as it is, the terminal would obey them."""

from __future__ import annotations

import re
from typing import Final

#: an escape sequence (OSC, DCS and the like to their terminator, CSI to its final byte, or
#: ESC and one character), or one control character other than tab and newline (C0, DEL, C1)
_UNSAFE: Final = re.compile(
    r"\x1b[\]P^_X][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


#: an escape sequence begun at the end of a piece of a stream, and not yet ended
_OPEN: Final = re.compile(r"\x1b(?:[\]P^_X][^\x07\x1b\x9c]*|\[[0-?]*[ -/]*)?\Z")
#: the most of a begun sequence held back for the next piece; longer, it is text
_HELD_AT_MOST: Final = 4096


def printable(text: str) -> str:
    """``text`` without escape sequences and control characters, but for tabs and newlines."""
    return _UNSAFE.sub("", text)


class PrintableStream:
    """:func:`printable` over a reply's pieces as they stream: a sequence split between two
    pieces is held back until it ends, then dropped whole."""

    def __init__(self) -> None:
        self._held = ""

    def __call__(self, piece: str) -> str:
        text = self._held + piece
        begun = _OPEN.search(text)
        self._held = ""
        if begun is not None and len(text) - begun.start() <= _HELD_AT_MOST:
            text, self._held = text[: begun.start()], text[begun.start() :]
        return printable(text)
