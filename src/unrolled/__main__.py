"""``python -m unrolled`` runs the command-line interface."""
from unrolled.cli import main

raise SystemExit(main())
