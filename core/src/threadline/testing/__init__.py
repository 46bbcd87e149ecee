"""Contract suites and fakes for testing threadline plugins.

A storage plugin's tests subclass :class:`StorageContract` and give one fixture, ``storage``;
a provider plugin's subclass :class:`ProviderContract` and give ``provider_harness``.
Run them with pytest-asyncio in auto mode (``asyncio_mode = "auto"``).
"""

from threadline.builtins.echo import Reply, ScriptedToolCall
from threadline.testing.provider_contract import (
    WEATHER,
    ProviderContract,
    ProviderHarness,
    collect,
    tool_conversation,
)
from threadline.testing.recorder import EventRecorder
from threadline.testing.storage_contract import StorageContract

__all__ = [
    "WEATHER",
    "EventRecorder",
    "ProviderContract",
    "ProviderHarness",
    "Reply",
    "ScriptedToolCall",
    "StorageContract",
    "collect",
    "tool_conversation",
]
