"""Unit tests of ``ezspark_common.trainer``."""
