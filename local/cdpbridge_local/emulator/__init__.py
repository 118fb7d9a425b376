"""A local Braze REST API that enforces the documented contract; see local/README.md."""

from cdpbridge_local.emulator.config import EmulatorConfig
from cdpbridge_local.emulator.server import EmulatorServer, serve_forever

__all__ = ["EmulatorConfig", "EmulatorServer", "serve_forever"]
