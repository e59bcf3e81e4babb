"""The database: engine, connection watchdog, schema, migrations."""
