from __future__ import annotations

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
