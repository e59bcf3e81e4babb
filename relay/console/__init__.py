"""The web console: server-rendered pages over the same functions as the API and the CLI."""
