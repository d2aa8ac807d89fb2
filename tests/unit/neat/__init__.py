"""Unit tests of ``ezspark_common.neat``."""
