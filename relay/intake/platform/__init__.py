"""The platform source: each company's events from 3C Plus over socket.io, into the inbox."""
