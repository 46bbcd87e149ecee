"""Time to first token, and to the whole stream, of a 100-chunk reply streamed through a
``Session`` with the ``pii`` middleware (mask, pseudonymize) and without it, in the same
process and run, taking turns call by call (``bench/middleware_streams.py``).

In pieces of 4 characters most chunks end in the middle of a word, which an ``@`` could
still make an address: the mask holds a word back until it ends, the worst case of its
hold-back; paced like a hosted model, holding back a word costs a chunk's wait.

Run: python bench/pii.py [--calls 300] [--stall 0.25] [--gap 0.01]
"""

from __future__ import annotations

import asyncio

from middleware_streams import main

CONTENDERS = {
    "no middleware": {},
    "pii, mask": {"pii": {"action": "mask"}},
    "pii, pseudonymize": {"pii": {"action": "pseudonymize"}},
}

if __name__ == "__main__":
    asyncio.run(main(CONTENDERS, __doc__ or ""))
