"""The domain: pure rules of the gateway (states and their transitions, planning).

No I/O: no asyncio, database, network, files or settings; an import contract
(pyproject.toml) keeps it so. Decisions made here are tested without a database.
"""
