"""The one exception type the CLI turns into a message instead of a traceback."""

from __future__ import annotations


class GemmaError(Exception):
    """A problem with the user's input (a file, a key, a prompt) described for the user."""
