"""Hypothesis profiles for the property-based tests of intake's parsers.

`default` is what `make test` runs: few examples, the same ones every run
(derandomized, no example database), no deadline (a busy CI machine is not a
failure), so the folder stays well under a minute and never flakes. `fuzz` is what
`make fuzz` runs (HYPOTHESIS_PROFILE=fuzz): about 80 times as many, random examples,
with an example database under .data/ so that a failure found once is tried first next
time. Each property asks for a share of the profile's number (`support.scaled`): the
cheap ones up to four times it (20,000 examples under `fuzz`), the ones that cost a
request or a MIME parse per example one time or less, so that `make fuzz` takes about
half an hour on one core.
"""
from __future__ import annotations

import os
from pathlib import Path

# Hypothesis keeps its caches (and the fuzz profile its database) under .data/, which
# git ignores, rather than in a .hypothesis/ folder at the top of the repository.
# Set before any strategy runs: Hypothesis reads it on first use.
STORAGE = Path(__file__).resolve().parents[2] / ".data" / "hypothesis"
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(STORAGE))

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402

# Slow or large examples are the point here (huge lines, deep nesting), not a mistake.
_EXPECTED_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "default",
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_EXPECTED_SLOW,
)
settings.register_profile(
    "fuzz",
    max_examples=5_000,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(STORAGE / "examples"),
    deadline=None,
    print_blob=True,
    suppress_health_check=_EXPECTED_SLOW,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

