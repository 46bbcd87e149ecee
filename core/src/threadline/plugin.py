"""The API for plugin authors: everything a plugin may import from the kernel, in one place.

A plugin imports from ``threadline`` (the user API) and from here, nothing else::

    from threadline.plugin import Register, hookimpl, ProviderConfig

Names not in ``__all__`` below, and modules not named here, are the kernel's own and may
change without notice. The contract suites are in :mod:`threadline.testing`. Each name is
imported on first use (PEP 562): a plugin's entry module that imports ``hookimpl`` and
``Register`` from here loads neither the data model nor an SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.cli import with_manager
    from threadline.config import finite, user_data_dir
    from threadline.contracts import (
        WAITER_SECONDS,
        Provider,
        Storage,
        TurnLease,
        check_replacement,
        check_revision_follows,
        listed_sessions,
        make_cursor,
        next_lease,
        next_version,
        read_cursor,
    )
    from threadline.errors import (
        AuthenticationError,
        BadCursor,
        BadRequest,
        ConfigError,
        ContextTooLong,
        DataFormatError,
        PluginError,
        ProviderError,
        ProviderUnavailable,
        RateLimited,
        SessionNotFound,
        StorageConflict,
        StorageError,
        StorageUnavailable,
        ThreadlineError,
        ToolError,
    )
    from threadline.examples import examples_epilog
    from threadline.history_cache import HistoryCache
    from threadline.hookspecs import hookimpl
    from threadline.middleware import Call, CompleteNext, Middleware, StreamNext, ToolNext, Turn, TurnNext
    from threadline.model import (
        CallOptions,
        Capabilities,
        DeletedCounts,
        Done,
        Event,
        File,
        FrozenDict,
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
        Text,
        TextDelta,
        ToolCall,
        ToolCallDelta,
        ToolResult,
        ToolSpec,
        Usage,
        dump,
        dump_parts,
        dump_record,
        dumps,
        load,
        load_parts,
        load_record,
        message_extra,
        new_id,
        unchecked_constructor,
        utcnow,
    )
    from threadline.output import output_instruction
    from threadline.plugins import critical
    from threadline.providers import (
        PDF,
        ProviderConfig,
        StreamReader,
        check_attachments,
        context_window,
        data_url,
        error_for_status,
        error_object,
        read_stream,
        retry_after,
        send_body,
        translating,
        transport_error,
    )
    from threadline.registry import NoConfig, Register, RegisterSettings, RegisterTool
    from threadline.search import (
        ELLIPSIS,
        MARK_END,
        MARK_START,
        SNIPPET_WORDS,
        SearchHit,
        SearchQuery,
        message_text,
        search_terms,
        snippet,
    )
    from threadline.settling import settled
    from threadline.storage_events import StorageEvent, read_event
    from threadline.tools import Tool, tool

#: where each name lives: module -> names
_MODULES = {
    "threadline.cli": "with_manager",
    "threadline.examples": "examples_epilog",
    "threadline.config": "finite user_data_dir",
    "threadline.contracts": (
        "Provider Storage TurnLease WAITER_SECONDS check_replacement check_revision_follows listed_sessions "
        "make_cursor next_lease next_version read_cursor"
    ),
    "threadline.errors": (
        "AuthenticationError BadCursor BadRequest ConfigError ContextTooLong DataFormatError "
        "PluginError ProviderError ProviderUnavailable RateLimited SessionNotFound "
        "StorageConflict StorageError StorageUnavailable ThreadlineError ToolError"
    ),
    "threadline.history_cache": "HistoryCache",
    "threadline.hookspecs": "hookimpl",
    "threadline.middleware": "Call CompleteNext Middleware StreamNext ToolNext Turn TurnNext",
    "threadline.model": (
        "CallOptions Capabilities DeletedCounts Done Event File FrozenDict Image Message MessageStatus "
        "OutputSchema Part Request Response Revision Role SessionPage SessionQuery SessionRecord SessionStatus Text "
        "TextDelta ToolCall ToolCallDelta ToolResult ToolSpec Usage dump dump_parts dump_record dumps "
        "load load_parts load_record message_extra new_id unchecked_constructor utcnow"
    ),
    "threadline.output": "output_instruction",
    "threadline.plugins": "critical",
    "threadline.providers": (
        "PDF ProviderConfig StreamReader check_attachments context_window data_url error_for_status "
        "error_object read_stream retry_after send_body translating transport_error"
    ),
    "threadline.registry": "NoConfig Register RegisterSettings RegisterTool",
    "threadline.search": (
        "ELLIPSIS MARK_END MARK_START SNIPPET_WORDS SearchHit SearchQuery message_text search_terms snippet"
    ),
    "threadline.settling": "settled",
    "threadline.storage_events": "StorageEvent read_event",
    "threadline.tools": "Tool tool",
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names.split()}


if not TYPE_CHECKING:  # so that type checkers see only the names imported above

    def __getattr__(name: str) -> Any:
        if name not in _EXPORTS:
            raise AttributeError(f"module 'threadline.plugin' has no attribute {name!r}")
        value = globals()[name] = getattr(importlib.import_module(_EXPORTS[name]), name)
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


__all__ = [  # noqa: RUF022 -- grouped by what a plugin does, sorted within a group
    # hooks and registration
    "NoConfig", "Register", "RegisterSettings", "RegisterTool", "critical", "hookimpl",
    # contracts a plugin implements
    "Call", "CompleteNext", "Middleware", "Provider", "Storage", "StreamNext", "ToolNext", "Turn", "TurnNext",
    # providers: shared config keys, errors, streams, attachments
    "PDF", "ProviderConfig", "StreamReader", "check_attachments", "context_window", "data_url",
    "error_for_status", "error_object", "read_stream", "retry_after", "send_body", "translating", "transport_error",
    # storage: cursors, JSON of parts and records, fast rebuild of stored rows
    "FrozenDict", "dump", "dump_parts", "dump_record", "dumps", "listed_sessions", "load", "load_parts", "load_record",
    "make_cursor",
    "message_extra", "new_id", "read_cursor", "unchecked_constructor", "user_data_dir", "utcnow",
    # storage: decoded histories kept between reads
    "HistoryCache",
    # storage: what other processes changed, as it happens
    "StorageEvent", "read_event",
    # storage: full-text search, the same words and text in every storage (optional)
    "SearchHit", "SearchQuery", "message_text", "search_terms", "snippet", "ELLIPSIS", "MARK_END", "MARK_START",
    "SNIPPET_WORDS",
    # storage: writes a cancellation must not leave half done
    "settled",
    # storage: the turn lease's rule, the update's, and a replacement's checks
    "TurnLease", "WAITER_SECONDS", "check_replacement", "check_revision_follows", "next_lease", "next_version",
    # config classes
    "finite",
    # the data model
    "CallOptions", "Capabilities", "DeletedCounts", "Done", "Event", "File", "Image", "Message", "MessageStatus",
    "OutputSchema", "Part", "Request", "Response", "Revision", "Role", "output_instruction",
    "SessionPage", "SessionQuery", "SessionRecord", "SessionStatus",
    "Text", "TextDelta", "ToolCall", "ToolCallDelta", "ToolResult", "ToolSpec", "Usage",
    # tools and commands
    "Tool", "tool", "with_manager", "examples_epilog",
    # errors
    "AuthenticationError", "BadCursor", "BadRequest", "ConfigError", "ContextTooLong", "DataFormatError",
    "PluginError", "ProviderError", "ProviderUnavailable", "RateLimited", "SessionNotFound", "StorageConflict",
    "StorageError", "StorageUnavailable", "ThreadlineError", "ToolError",
]  # fmt: skip
