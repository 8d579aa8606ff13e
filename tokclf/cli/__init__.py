"""The `tokclf` command line, thin over the library (spaCy's cli/ habit)."""

from tokclf.cli.main import main

__all__ = ["main"]
