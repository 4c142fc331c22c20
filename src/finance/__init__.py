"""Finance: a self-hosted, async personal-finance service with exact double-entry books."""

__version__ = "0.1.0"
