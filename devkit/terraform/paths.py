"""Where the Terraform tooling reads and writes: the repository root and its git-ignored ``.local/``."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = REPO_ROOT / ".local"
# Where the full output of a failed terraform command is kept (one file per failure).
FAILED_LOG_DIR = LOCAL_DIR / "logs"


def required_terraform_version(root: Path = REPO_ROOT) -> str:
    """The root module's minimum Terraform version (``required_version = ">= X"`` in versions.tf): the one
    value the README, the examples and the tooling's messages state."""
    text = (root / "versions.tf").read_text(encoding="utf-8")
    match = re.search(r'required_version\s*=\s*">=\s*([0-9.]+)"', text)
    if match is None:
        raise ValueError(f'no required_version = ">= X" in {root / "versions.tf"}')
    return match.group(1)
