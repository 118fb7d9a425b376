"""The shared layer of braze-cdp-bridge: Braze client, sync engine, mappings and state stores."""

__version__ = "0.1.0"
