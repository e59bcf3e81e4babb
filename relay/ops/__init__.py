"""Operating it: metrics, health, log configuration, secret masking."""
