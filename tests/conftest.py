from stores import storage_table  # noqa: F401 (a fixture: a new, empty store of a kind)

from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
