"""``python -m unrolled`` runs the command-line interface."""
from unrolled.cli import entry

entry()
