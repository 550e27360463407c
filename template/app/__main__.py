"""`python -m app COMMAND`: the project's management commands (app/cli/)."""

import sys

from app.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
