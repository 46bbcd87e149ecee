"""threadline: LLM conversation sessions that persist, move between providers and pass an audit."""

from importlib.metadata import PackageNotFoundError, version

from threadline.config import Config, Defaults, MiddlewareSection, PluginsSection, StorageSection, Template
from threadline.contracts import Provider, Storage, make_cursor, read_cursor
from threadline.errors import (
    AuthenticationError,
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
from threadline.hookspecs import hookimpl
from threadline.manager import SessionManager
from threadline.middleware import Call, Middleware
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
    Part,
    Request,
    Response,
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
from threadline.session import Session
from threadline.tools import Tool, tool

try:
    __version__ = version("threadline")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "AuthenticationError", "BadRequest", "Call", "CallOptions", "Capabilities", "Config", "ConfigError",
    "ContextTooLong", "DataFormatError", "Defaults", "DeletedCounts", "Done", "Event", "File", "Image",
    "Message", "MessageStatus", "Middleware", "MiddlewareSection", "NoConfig", "Part", "PluginError",
    "PluginManager", "PluginsSection", "Provider", "ProviderError", "ProviderUnavailable", "RateLimited",
    "Request", "Response", "Role", "Session", "SessionManager", "SessionNotFound", "SessionPage",
    "SessionQuery", "SessionRecord", "SessionStatus", "Storage", "StorageConflict", "StorageError",
    "StorageSection", "StorageUnavailable", "StreamAssembler", "Template", "Text", "TextDelta",
    "ThreadlineError", "Tool", "ToolCall", "ToolCallDelta", "ToolError", "ToolResult", "ToolSpec", "Usage",
    "__version__", "critical", "get_plugin_manager", "hookimpl", "make_cursor", "read_cursor", "tool",
]  # fmt: skip
