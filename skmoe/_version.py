"""The version of skmoe, in one place."""

__version__ = "0.1.0.dev0"
