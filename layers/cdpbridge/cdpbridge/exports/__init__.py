"""Braze segment export machinery: start an export, wait for it across invocations, stream it out.

Not an integration: an integration's export (``cdpbridge.integrations.<name>``) is an
``ExportIntegration`` (its config model and its output writer) that this machinery runs.
``handlers`` is what export functions import (light); ``runtime`` loads on their first event.
"""
