"""Intake: POST /v1/events, from body to a stored event and its 202."""
