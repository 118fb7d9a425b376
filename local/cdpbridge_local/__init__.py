"""Local-only tooling: the Braze emulator, the Docker-free local stack, the CLI and demo data."""
