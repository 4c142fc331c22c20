"""The user directory: one's own profile, and administration."""
