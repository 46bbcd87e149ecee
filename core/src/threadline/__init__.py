"""threadline: LLM conversation sessions that persist, move between providers and pass an audit.

Every name below is imported on first use (PEP 562), so ``import threadline`` and plugin
discovery stay light: the data model, cattrs and asyncio load only when something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.backup import BackupHeader, backup_sessions, restore_sessions
    from threadline.config import Config, Defaults, MiddlewareSection, PluginsSection, StorageSection, Template
    from threadline.contracts import Provider, Storage, make_cursor, read_cursor
    from threadline.errors import (
        AuthenticationError,
        BadCursor,
        BadRequest,
        ConfigError,
        ContextTooLong,
        DataFormatError,
        HistoryError,
        MigrationIncomplete,
        OutputError,
        PluginError,
        ProviderError,
        ProviderUnavailable,
        RateLimited,
        SessionArchived,
        SessionNotFound,
        StorageConflict,
        StorageError,
        StorageUnavailable,
        ThreadlineError,
        ToolError,
    )
    from threadline.hookspecs import hookimpl
    from threadline.manager import SessionManager
    from threadline.middleware import Call, Middleware, Turn
    from threadline.migrate import MigrationReport, migrate_sessions
    from threadline.model import (
        CallOptions,
        Capabilities,
        DeletedCounts,
        Done,
        Event,
        File,
        Image,
        Message,
        MessageStatus,
        OutputSchema,
        Part,
        Request,
        Response,
        Revision,
        Role,
        SessionPage,
        SessionQuery,
        SessionRecord,
        SessionStatus,
        StreamAssembler,
        Text,
        TextDelta,
        ToolCall,
        ToolCallDelta,
        ToolResult,
        ToolSpec,
        Usage,
    )
    from threadline.plugins import PluginManager, critical, get_plugin_manager
    from threadline.registry import NoConfig
    from threadline.search import SearchHit, SearchQuery
    from threadline.session import Session
    from threadline.storage_events import StorageEvent
    from threadline.tally import Tally
    from threadline.tools import Tool, tool

#: where each public name lives: module -> names
_MODULES = {
    "threadline.backup": "BackupHeader backup_sessions restore_sessions",
    "threadline.config": "Config Defaults MiddlewareSection PluginsSection StorageSection Template",
    "threadline.contracts": "Provider Storage make_cursor read_cursor",
    "threadline.errors": (
        "AuthenticationError BadCursor BadRequest ConfigError ContextTooLong DataFormatError HistoryError "
        "MigrationIncomplete OutputError PluginError ProviderError ProviderUnavailable RateLimited SessionArchived "
        "SessionNotFound StorageConflict StorageError StorageUnavailable ThreadlineError ToolError"
    ),
    "threadline.hookspecs": "hookimpl",
    "threadline.manager": "SessionManager",
    "threadline.middleware": "Call Middleware Turn",
    "threadline.migrate": "MigrationReport migrate_sessions",
    "threadline.model": (
        "CallOptions Capabilities DeletedCounts Done Event File Image Message "
        "MessageStatus OutputSchema Part Request Response Revision Role SessionPage SessionQuery SessionRecord "
        "SessionStatus StreamAssembler Text TextDelta ToolCall ToolCallDelta ToolResult "
        "ToolSpec Usage"
    ),
    "threadline.plugins": "PluginManager critical get_plugin_manager",
    "threadline.registry": "NoConfig",
    "threadline.search": "SearchHit SearchQuery",
    "threadline.session": "Session",
    "threadline.storage_events": "StorageEvent",
    "threadline.tally": "Tally",
    "threadline.tools": "Tool tool",
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names.split()}


if not TYPE_CHECKING:  # so that type checkers see only the names imported above

    def __getattr__(name: str) -> Any:
        if name == "__version__":
            from importlib.metadata import PackageNotFoundError, version

            try:
                value: Any = version("threadline")
            except PackageNotFoundError:  # running from a source tree that is not installed
                value = "0.0.0"
        elif name in _EXPORTS:
            value = getattr(importlib.import_module(_EXPORTS[name]), name)
        else:
            raise AttributeError(f"module 'threadline' has no attribute {name!r}")
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


__all__ = [
    "AuthenticationError", "BackupHeader", "BadCursor", "BadRequest", "Call", "CallOptions", "Capabilities", "Config",
    "ConfigError", "ContextTooLong", "DataFormatError", "Defaults", "DeletedCounts", "Done", "Event", "File",
    "HistoryError", "Image",
    "Message", "MessageStatus", "Middleware", "MiddlewareSection", "MigrationIncomplete", "MigrationReport",
    "NoConfig", "OutputError", "OutputSchema", "Part", "PluginError",
    "PluginManager", "PluginsSection", "Provider", "ProviderError", "ProviderUnavailable", "RateLimited",
    "Request", "Response", "Revision", "Role", "SearchHit", "SearchQuery", "Session", "SessionArchived",
    "SessionManager", "SessionNotFound",
    "SessionPage",
    "SessionQuery", "SessionRecord", "SessionStatus", "Storage", "StorageConflict", "StorageError",
    "StorageEvent", "StorageSection", "StorageUnavailable", "StreamAssembler", "Tally", "Template", "Text", "TextDelta",
    "ThreadlineError", "Tool", "ToolCall", "ToolCallDelta", "ToolError", "ToolResult", "ToolSpec", "Turn", "Usage",
    "__version__", "backup_sessions", "critical", "get_plugin_manager", "hookimpl", "make_cursor",
    "migrate_sessions", "read_cursor", "restore_sessions", "tool",
]  # fmt: skip
