"""Pure translation: X12 bytes in, canonical pydantic documents out, and back.

This package never does I/O beyond the file-like object a caller hands it, never
uses asyncio, a network or a database, and never imports ``gateway``.
"""
