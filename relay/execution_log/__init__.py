"""The execution log: records, the database sink, partitions, retention, purge."""
