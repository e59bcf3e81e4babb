"""Companies, webhooks and their filters: the cached snapshot and its writes."""
