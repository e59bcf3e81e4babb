"""Intake from the call-center platform: one socket.io stream per company, events handed on."""
