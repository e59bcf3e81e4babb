"""`relay demo`: the whole loop on this machine, with a receiver of its own."""
