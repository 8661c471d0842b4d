"""Where the Terraform tooling reads and writes: the repository root and its git-ignored ``.local/``."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = REPO_ROOT / ".local"
# Where the full output of a failed terraform command is kept (one file per failure).
FAILED_LOG_DIR = LOCAL_DIR / "logs"
