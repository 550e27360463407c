"""The management commands of `python -m app` (`python -m app --help` lists them)."""
