"""Subcommands of the `cdpbridge` CLI; each module exposes ``register(subparsers)``."""
