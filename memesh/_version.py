"""The package version (semver). Kept in its own module so setup.py can read it without importing memesh."""
__version__ = "0.1.0"
