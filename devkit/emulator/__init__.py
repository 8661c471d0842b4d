"""Embedded AWS emulator for local runs and tests: moto server plus documented compatibility shims.

Import ``devkit.emulator.server.Emulator`` for the in-process API; ``python -m devkit.emulator`` runs it
as a process. This package is never shipped in the Lambda zip.
"""
