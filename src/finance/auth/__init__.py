"""Sign-in, tokens and the caller's identity."""
