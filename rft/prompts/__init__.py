"""Prompt texts of the papers, verbatim where the papers give them (see docs/PROMPTS.md for choices)."""
