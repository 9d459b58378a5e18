"""The package version (a low module, so the CLI can read it without importing the package face)."""

__version__ = "0.1.0"
