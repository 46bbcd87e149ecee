"""What a model said, or the storage holds, reaches the terminal without escape sequences:
a reply that writes the clipboard (OSC 52) or moves the cursor is printed as its text."""

from __future__ import annotations

import pytest

from threadline.printable import PrintableStream, printable

OSC_52 = "\x1b]52;c;ZXZpbA==\x07"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"copy {OSC_52}this", "copy this"),
        ("a \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ b", "a link b"),
        ("\x1b[2J\x1b[31mred\x1b[0m", "red"),
        ("c1 \x9b2J csi, bell\x07, cr\r, nul\x00", "c1 2J csi, bell, cr, nul"),
        ("tabs\tand\nnewlines stay, ünïcode ✓ too", "tabs\tand\nnewlines stay, ünïcode ✓ too"),
        ("a lone escape at the end \x1b", "a lone escape at the end "),
    ],
)
def test_printable_keeps_the_text_and_drops_what_a_terminal_obeys(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_a_sequence_split_between_streamed_pieces_is_dropped_whole() -> None:
    shown = PrintableStream()
    text = f"zebra {OSC_52} crossing \x1b[2J done"
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert "".join(shown(piece) for piece in pieces) == "zebra  crossing  done"
