"""Where the template repository and its test caches are."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Virtual environments, mypy caches and downloaded tools the tests reuse between runs.
CACHE = ROOT / ".cache"
# Copier's settings for the tests and the harness: trusted sources, no update check.
COPIER_SETTINGS = ROOT / "tests" / "copier-settings.yml"
