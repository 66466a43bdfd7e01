"""AS2 messages (placeholder)."""
