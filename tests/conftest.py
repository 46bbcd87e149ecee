from threadline.testing import isolated_user_dirs  # noqa: F401 (autouse: no real user dirs)
