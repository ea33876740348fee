"""Command-line entry points (argh); a thin skin over the library."""
