"""Unit tests of ``ezspark_common.service``."""
