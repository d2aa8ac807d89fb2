"""Unit tests of ``ezspark_common.evaluation``."""
