"""Alembic migrations of the gateway schema (see gateway.db.schema for how they run)."""
