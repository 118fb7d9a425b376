"""Integrations: one package per partner, each declaring itself once in the registry.

``cdpbridge.integrations.registry`` lists them; ``get_integration(name)`` gives an entry (its inbound
prefix, what turns its records into updates, its exports and example files). The engine never
looks here. Nothing is imported at package import, so a handler importing a sibling stays light.
"""
