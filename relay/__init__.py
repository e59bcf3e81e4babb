"""The webhook relay: configuration, schema, the execution-log sink and the CLI."""

__version__ = "0.1.0"
