"""Running the relay: wiring, `serve`, child supervision, dispatcher and drain processes."""
