"""Unit tests of ``ezspark_common.broker``."""
