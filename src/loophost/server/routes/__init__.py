"""Route modules, one per resource family of the Claude Managed Agents API (all under /v1)."""
