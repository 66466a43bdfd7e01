"""Storage: SQLAlchemy 2 table models, engine creation and schema checks.

The same code runs on SQLite (aiosqlite, WAL, synchronous=FULL) and PostgreSQL
(asyncpg). Nothing here opens a connection at import time.
"""
