"""EzSpark package."""
