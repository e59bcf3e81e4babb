"""People and their credentials: users (admin or viewer, optionally limited to companies)
with argon2-hashed passwords, API tokens stored only as hashes, and the authenticator that
turns an `Authorization` header into a `Principal` for the management API and intake."""
