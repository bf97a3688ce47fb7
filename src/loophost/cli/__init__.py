"""The `loophost` command line. Commands are thin: each calls the library and renders the result."""

from ._app import app, main

__all__ = ["app", "main"]
