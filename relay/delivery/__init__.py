"""Deliveries: the dispatcher that POSTs due deliveries, retries, signatures."""
