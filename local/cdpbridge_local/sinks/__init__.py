"""Partner sinks on loopback: stand-ins for the partner APIs the routes post to, recording what came."""

from cdpbridge_local.sinks.lytics import LyticsBatch, LyticsSink, LyticsSinkServer

__all__ = ["LyticsBatch", "LyticsSink", "LyticsSinkServer"]
