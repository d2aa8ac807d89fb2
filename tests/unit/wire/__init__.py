"""Unit tests of ``ezspark_common.wire``."""
