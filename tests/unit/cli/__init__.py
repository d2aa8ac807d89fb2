"""Unit tests of ``ezspark_common.cli``."""
