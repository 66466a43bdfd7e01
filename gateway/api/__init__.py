"""HTTP endpoints of the gateway (aiohttp handlers). Handlers translate HTTP to
calls on intake, pipeline and storage; they hold no business rules themselves."""
