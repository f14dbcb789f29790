"""Thin entry points: parse a config, build the components, run them (docs/ARCHITECTURE.md)."""
