"""`python -m finance`."""

from finance.cli import app

app(prog_name="finance")
