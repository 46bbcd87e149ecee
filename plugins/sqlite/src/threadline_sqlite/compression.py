"""Message bodies as zstd frames (``[storage] compression = "zstd"``), with a dictionary trained
on the database's own messages, so that short chat messages compress too.

The ``zstandard`` package (``pip install 'threadline-sqlite[zstd]'``) is imported only when a
database compresses, or a compressed body is read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from threadline.plugin import DataFormatError

LEVEL: Final = 3
DICTIONARY_SIZE: Final = 112 * 1024  # zstd's own default size
TRAIN_FROM: Final = 1000  # messages: fewer teach a dictionary too little
TRAINING_SAMPLES: Final = 20_000  # the newest messages a dictionary learns from


class UnknownDictionary(DataFormatError):
    """A frame names a dictionary this codec has not loaded (another process may have added
    it since: read the table again)."""


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError:
        raise DataFormatError(
            'zstd compression ([storage] compression = "zstd", or a database that holds compressed '
            "messages) needs the zstandard package: pip install 'threadline-sqlite[zstd]'"
        ) from None
    return zstandard


class Codec:
    """Compresses bodies with the newest dictionary, and reads a frame made with any. Made for
    a database that does not compress, it imports zstandard only to read a compressed body."""

    def __init__(self, dictionaries: Sequence[bytes] = (), *, compress: bool = False) -> None:
        self._dictionaries = list(dictionaries)
        self._compress = compress
        self._zstd: Any = None
        self._decompressors: dict[int, Any] = {}
        self._compressor: Any = None
        if compress:
            self._prepare()

    def _prepare(self) -> Any:
        """zstandard, once it is imported and every dictionary is loaded."""
        if self._zstd is None:
            self._zstd = _zstandard()
            if self._compress:
                self._compressor = self._zstd.ZstdCompressor(level=LEVEL, write_checksum=False)
            for dictionary in self._dictionaries:
                self._load(dictionary)
        return self._zstd

    def add(self, dictionary: bytes) -> None:
        """Use ``dictionary`` (its bytes as trained) from now on, unless it is loaded already."""
        if dictionary in self._dictionaries:
            return
        self._dictionaries.append(dictionary)
        if self._zstd is not None:
            self._load(dictionary)

    def _load(self, dictionary: bytes) -> None:
        loaded = self._zstd.ZstdCompressionDict(dictionary)
        self._decompressors[loaded.dict_id()] = self._zstd.ZstdDecompressor(dict_data=loaded)
        if self._compress:
            loaded.precompute_compress(level=LEVEL)  # else every message digests the dictionary again
            self._compressor = self._zstd.ZstdCompressor(level=LEVEL, dict_data=loaded, write_checksum=False)

    def pack(self, body: str) -> str | bytes:
        """``body`` as stored: a zstd frame when compressing makes it smaller, else the text."""
        if not self._compress:
            return body
        data = body.encode()
        frame: bytes = self._compressor.compress(data)
        return frame if len(frame) < len(data) else body

    def unpack(self, frame: bytes) -> str:
        zstd = self._prepare()
        try:
            dict_id = zstd.get_frame_parameters(frame).dict_id
            decompressor = self._decompressors.get(dict_id)
            if decompressor is None:
                if dict_id:
                    raise UnknownDictionary(f"it was compressed with zstd dictionary {dict_id}, which is missing")
                decompressor = self._decompressors[0] = zstd.ZstdDecompressor()
            text: str = decompressor.decompress(frame).decode()
        except (zstd.ZstdError, UnicodeDecodeError) as exc:  # damaged: a message, and vacuum, say so
            raise DataFormatError(f"not a zstd frame of UTF-8 text it can read: {exc}") from None
        return text


def train(samples: Sequence[str]) -> bytes:
    """A dictionary for messages like ``samples``."""
    zstd = _zstandard()
    trained = zstd.train_dictionary(DICTIONARY_SIZE, [sample.encode() for sample in samples], level=LEVEL)
    dictionary: bytes = trained.as_bytes()
    return dictionary
