"""feeds: republish agency press releases from plain-text dumps as feeds."""

__version__ = "0.1.0"
