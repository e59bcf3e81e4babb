"""The durable inbox every way in writes to: accepted events and their deliveries."""
