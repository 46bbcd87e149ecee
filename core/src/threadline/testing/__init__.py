"""Contract suites and fakes for testing threadline plugins.

A storage plugin's tests subclass :class:`StorageContract` and give one fixture, ``storage``
(one that several processes share subclasses :class:`SharedStorageContract` too, and gives
``other`` as well; one with the optional full-text search :class:`SearchContract` too); a
provider plugin's subclass :class:`ProviderContract` (:class:`HTTPProviderContract` when it
calls an HTTP API) and give ``provider_harness``.
Run them with pytest-asyncio in auto mode (``asyncio_mode = "auto"``). Import
:func:`isolated_user_dirs` into a ``conftest.py`` to keep the tests out of the user's folders.
"""

from threadline.builtins.echo import Reply, ScriptedToolCall
from threadline.testing.provider_contract import (
    WEATHER,
    HTTPProviderContract,
    ProviderContract,
    ProviderHarness,
    collect,
    tool_conversation,
)
from threadline.testing.recorder import EventRecorder
from threadline.testing.services import server_missing
from threadline.testing.shared_storage_contract import SharedStorageContract
from threadline.testing.storage_contract import SearchContract, StorageContract
from threadline.testing.user_dirs import isolated_user_dirs

__all__ = [
    "WEATHER",
    "EventRecorder",
    "HTTPProviderContract",
    "ProviderContract",
    "ProviderHarness",
    "Reply",
    "ScriptedToolCall",
    "SearchContract",
    "SharedStorageContract",
    "StorageContract",
    "collect",
    "isolated_user_dirs",
    "server_missing",
    "tool_conversation",
]
