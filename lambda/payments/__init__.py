"""Payment domain: plain Python, importable and testable without Lambda events.

Handlers in ``handlers/`` parse events and shape responses; everything that decides
something about a payment lives here.
"""
