"""Operator tools: the `earshot` command (app.py), its sub-commands, and the supervisor
behind `earshot run`. `main` is re-exported so the console script `earshot.cli:main` holds."""

from earshot.cli.app import main

__all__ = ["main"]
