"""Finding a local provider mirror the way Terraform does, and the CLI config that uses it.

Order (the first directory holding ``registry.terraform.io/hashicorp/aws`` for this platform wins):

1. ``TF_PLUGIN_MIRROR``: an explicit mirror directory. Set but without the provider is an error.
2. Terraform's implied local mirror directories: ``$HOME/.terraform.d/plugins``,
   ``$XDG_DATA_HOME/terraform/plugins`` (default ``$HOME/.local/share``) and ``terraform/plugins``
   under each ``$XDG_DATA_DIRS`` entry (default ``/usr/local/share:/usr/share``); on macOS also
   ``Library/Application Support/io.terraform/plugins`` in the home directory and at the root.
3. A bounded search (:data:`MIRROR_SEARCH_DEPTH` levels, hidden directories skipped, at most
   :data:`MIRROR_SEARCH_MAX_DIRS` directories) of a few conventional roots
   (:data:`MIRROR_SEARCH_ROOTS`) for a directory laid out as a filesystem mirror.

Without a mirror nothing is written and Terraform installs providers from the public registry.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

from devkit.terraform.errors import TerraformError
from devkit.terraform.paths import LOCAL_DIR

AWS_PROVIDER_SOURCE = "registry.terraform.io/hashicorp/aws"
MIRROR_ENV = "TF_PLUGIN_MIRROR"

# Roots of the last-resort search ("~" is the home directory of the environment searched).
MIRROR_SEARCH_ROOTS: tuple[str, ...] = ("/opt", "/srv", "/usr/local", "~")
# Directories below a root that may be a mirror: <root>/<a>/<b>/<c> at the deepest.
MIRROR_SEARCH_DEPTH = 3
MIRROR_SEARCH_MAX_DIRS = 20_000
# Never descended into: big trees that are not provider mirrors.
_SEARCH_SKIPPED = frozenset({"node_modules", "site-packages", "dist-packages", "__pycache__"})


def platform_dir() -> str:
    """Terraform's ``<os>_<arch>`` name of this platform (``linux_amd64``, ``darwin_arm64``, ...)."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{sys.platform.replace('linux2', 'linux')}_{arch}"


def mirror_has_aws_provider(path: Path) -> bool:
    """True when ``path`` is a filesystem mirror (packed or unpacked) holding hashicorp/aws for us."""
    provider_dir = path / AWS_PROVIDER_SOURCE
    plat = platform_dir()
    try:
        if not provider_dir.is_dir():
            return False
        # Unpacked layout: <version>/<os_arch>/terraform-provider-aws_*; packed: *_<os_arch>.zip.
        return any(
            (entry.is_dir() and (entry / plat).is_dir()) or entry.name.endswith(f"_{plat}.zip")
            for entry in provider_dir.iterdir()
        )
    except OSError:
        return False


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME", "").strip()
    return Path(home) if home else None


def implied_mirror_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Terraform's implied local mirror directories on this platform (Linux/Unix and macOS)."""
    env = os.environ if environ is None else environ
    home = _home(env)
    dirs: list[Path] = []
    if home is not None:
        dirs.append(home / ".terraform.d" / "plugins")
    if sys.platform == "darwin":
        if home is not None:
            dirs.append(home / "Library" / "Application Support" / "io.terraform" / "plugins")
        dirs.append(Path("/Library/Application Support/io.terraform/plugins"))
    else:
        data_home = env.get("XDG_DATA_HOME", "").strip()
        if data_home:
            dirs.append(Path(data_home) / "terraform" / "plugins")
        elif home is not None:
            dirs.append(home / ".local" / "share" / "terraform" / "plugins")
        data_dirs = env.get("XDG_DATA_DIRS", "").strip() or "/usr/local/share:/usr/share"
        dirs.extend(Path(entry) / "terraform" / "plugins" for entry in data_dirs.split(":") if entry)
    return dirs


def search_roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """:data:`MIRROR_SEARCH_ROOTS` with ``~`` resolved against the environment's ``HOME``."""
    env = os.environ if environ is None else environ
    home = _home(env)
    roots: list[Path] = []
    for root in MIRROR_SEARCH_ROOTS:
        if root == "~":
            if home is not None:
                roots.append(home)
        else:
            roots.append(Path(root))
    return roots


@functools.lru_cache(maxsize=32)
def _search_cached(roots: tuple[Path, ...], depth: int, max_dirs: int) -> Path | None:
    """Breadth-first over all roots at once, so that the shallowest mirror wins wherever it is.

    A symbolic link to a directory is examined but not descended into (no loops, no detours)."""
    queue: deque[tuple[Path, int, bool]] = deque((root, 0, True) for root in roots)
    seen: set[Path] = set()
    while queue and len(seen) < max_dirs:
        directory, level, descend = queue.popleft()
        if directory in seen:
            continue
        seen.add(directory)
        if mirror_has_aws_provider(directory):
            return directory.resolve()
        if not descend or level >= depth:
            continue
        try:
            with os.scandir(directory) as entries:
                children = sorted(
                    (Path(entry.path), not entry.is_symlink())
                    for entry in entries
                    if not entry.name.startswith(".") and entry.name not in _SEARCH_SKIPPED and entry.is_dir()
                )
        except OSError:
            continue
        queue.extend((child, level + 1, real) for child, real in children)
    return None


def search_for_mirror(
    roots: Iterable[Path], *, depth: int = MIRROR_SEARCH_DEPTH, max_dirs: int = MIRROR_SEARCH_MAX_DIRS
) -> Path | None:
    """The shallowest directory below ``roots`` (``depth`` levels at most) laid out as a mirror."""
    return _search_cached(tuple(Path(root) for root in roots), depth, max_dirs)


def find_provider_mirror(
    environ: Mapping[str, str] | None = None,
    *,
    implied_dirs: Iterable[Path] | None = None,
    roots: Iterable[Path] | None = None,
) -> Path | None:
    """Locate a local provider mirror: ``TF_PLUGIN_MIRROR``, the implied directories, a bounded search.

    Returns None when there is none (online users then get the public registry). An explicit
    ``TF_PLUGIN_MIRROR`` that does not hold the provider is an error, not a silent fallback.
    ``implied_dirs`` and ``roots`` replace the defaults (tests).
    """
    env = os.environ if environ is None else environ
    explicit = env.get(MIRROR_ENV, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not mirror_has_aws_provider(path):
            raise TerraformError(
                f"{MIRROR_ENV}={explicit} does not contain {AWS_PROVIDER_SOURCE} for {platform_dir()}"
            )
        return path.resolve()
    for candidate in implied_mirror_dirs(env) if implied_dirs is None else implied_dirs:
        if mirror_has_aws_provider(Path(candidate)):
            return Path(candidate).resolve()
    return search_for_mirror(search_roots(env) if roots is None else roots)


def render_cli_config(mirror: Path) -> str:
    """CLI config that installs hashicorp/aws from ``mirror`` and everything else from the registry.

    Terraform links an unpacked mirror's provider directory into ``.terraform`` instead of copying
    the ~700 MB binary, so scratch working copies stay cheap without a plugin cache.
    """
    lines = [
        "provider_installation {",
        "  filesystem_mirror {",
        f"    path    = {json.dumps(str(mirror))}",
        f"    include = [{json.dumps(AWS_PROVIDER_SOURCE)}]",
        "  }",
        "  direct {",
        f"    exclude = [{json.dumps(AWS_PROVIDER_SOURCE)}]",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_cli_config(path: Path, mirror: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = render_cli_config(mirror)
    # Rewrite only on change: concurrent test workers read this file.
    if not path.exists() or path.read_text() != content:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(content)
        tmp.replace(path)
    return path


def terraform_env(
    base: Mapping[str, str] | None = None,
    *,
    local_dir: Path = LOCAL_DIR,
    implied_dirs: Iterable[Path] | None = None,
    roots: Iterable[Path] | None = None,
) -> dict[str, str]:
    """Environment for our terraform runs only (the caller's own environment is left untouched).

    With a mirror: TF_CLI_CONFIG_FILE points at ``<local_dir>/terraformrc``. Without one: a
    TF_CLI_CONFIG_FILE naming a missing file is dropped (terraform would warn on every command).
    """
    env = dict(os.environ if base is None else base)
    mirror = find_provider_mirror(env, implied_dirs=implied_dirs, roots=roots)
    if mirror is not None:
        config = write_cli_config(local_dir / "terraformrc", mirror)
        env["TF_CLI_CONFIG_FILE"] = str(config)
    elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).expanduser().is_file():
        del env["TF_CLI_CONFIG_FILE"]
    env.setdefault("TF_IN_AUTOMATION", "1")
    env["TF_INPUT"] = "0"
    env["CHECKPOINT_DISABLE"] = "1"
    return env
