"""Writing the files threadline keeps for the user (the key file, saved templates and
aliases, ``[defaults]`` of the config file) safely when several processes do it at once.

- :func:`write_atomic`: the new text goes to a new file of a unique name beside the old one,
  is flushed to disk, then renamed over it, so the file shows the old text or the new, never
  part of either; a temporary file a killed process left behind is never in the way.
- :func:`locked`: an exclusive lock (``fcntl.flock``) on a lock file beside the file, held
  around a read-modify-write so that two processes setting different keys both keep theirs.
  Where there is no ``fcntl`` (Windows), it locks nothing: the writes stay whole, but two
  writers at the same instant may lose one's change.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover -- not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["locked", "write_atomic"]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for a read-modify-write of ``path``: a lock on the file
    ``.NAME.lock`` beside it (created, and kept, for the purpose: the file itself is replaced
    by each write, so it cannot be the one locked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover -- not POSIX
        yield
        return
    descriptor = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # which lets the lock go


def _check_writable(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if not mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        raise PermissionError(f"{path} is read-only (mode {stat.S_IMODE(mode):04o}); make it writable to change it")


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None, replace: bool = True) -> None:
    """Make ``data`` the content of ``path`` (text as UTF-8, its line endings as given), whole:
    written to a new file beside it, synced, and renamed over it. ``mode``: the new file's
    permissions (``0o600`` for secrets; the old file's, to keep them); ``None``: what a new
    file gets (``0o666`` less the umask). ``replace=False``: a ``FileExistsError`` when
    ``path`` exists, the new file left out (hold :func:`locked` for that to be certain). A
    file its owner may not write, or this user may not, is a ``PermissionError``, as writing
    it in place would be: renaming over it would get around its mode.
    """
    _check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = data.encode("utf-8") if isinstance(data, str) else data
    while True:  # a unique name, as tempfile.mkstemp makes one, but created with the mode asked for
        partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            descriptor = os.open(partial, flags, 0o666 if mode is None else 0o600)  # then `mode`, once written
            break
        except FileExistsError:  # pragma: no cover -- 48 random bits
            continue
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(partial, mode)  # the umask may have narrowed it
        if not replace and os.path.lexists(path):
            raise FileExistsError(f"{path} exists")
        os.replace(partial, path)
        _sync_folder(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def _sync_folder(folder: Path) -> None:
    """Flush the rename to disk too, where a folder can be opened for that (POSIX)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover -- Windows
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover -- some file systems refuse
        pass
    finally:
        os.close(descriptor)
