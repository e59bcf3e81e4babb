"""Per-host HTTP clients, their asyncio network backend, the SSRF guard."""
