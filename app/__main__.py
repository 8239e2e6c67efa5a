"""`python -m app` runs the dryapi-gateway command."""
from app.cli import main

raise SystemExit(main())
