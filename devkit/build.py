"""Reproducible Lambda package: ``build/lambda/payment-app.zip`` (``devkit build``).

Same inputs → same bytes, so ``source_code_hash = filebase64sha256(...)`` only changes when the code
or a pinned dependency does (no spurious Terraform diffs):

- zip root: the ``payments`` package (from ``lambda/``; its ``handlers`` subpackage holds the Lambda
  entry points), the only first-party code in the zip, and the runtime dependencies of
  ``lambda/requirements.txt`` installed for the Lambda platform (manylinux, CPython 3.12, x86_64 or
  arm64) with ``--only-binary=:all: --no-compile``;
- CPython 3.12 bytecode for every ``.py`` in the zip (``__pycache__/<name>.cpython-312.pyc`` beside
  it), compiled by a 3.12 interpreter (:func:`devkit.pythons.find_python`: ``PYTHON_LAMBDA``, else
  ``python3.12`` on PATH, else pyenv's) with ``--invalidation-mode unchecked-hash``: Lambda unpacks
  the zip with its own timestamps and a read-only task root, and an unchecked hash-based ``.pyc`` is
  used as it is, so no cold start compiles anything. Compiled with ``PYTHONHASHSEED=0`` and a fixed
  recorded path (``/var/task/<name>``), so the bytes only depend on the sources. Without a 3.12
  interpreter the zip has no bytecode (and the build says so);
- no other ``__pycache__``/``*.pyc``, no vendored tests, no per-install dist-info noise (RECORD,
  INSTALLER, REQUESTED, direct_url.json), no console scripts (their shebang names the build machine's
  Python);
- libraries the Lambda runtime already provides (boto3 and its dependencies) are not vendored;
- entries sorted, timestamps 1980-01-01 00:00:00, permissions 0644, deflate level 9.

Installed dependencies are cached in ``build/cache/deps-<key>`` (key = requirements + architecture +
Python version + platform tags), bytecode in ``build/cache/pyc-<key>`` (key = the interpreter's
version and every source's name and bytes), so rebuilds are fast and offline after the first.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devkit.pythons import PythonNotFoundError, find_python

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "build" / "lambda" / "payment-app.zip"
DEFAULT_CACHE = REPO_ROOT / "build" / "cache"
DEFAULT_REQUIREMENTS = REPO_ROOT / "lambda" / "requirements.txt"
LAMBDA_PYTHON_VERSION = "3.12"

# Lambda's names (the Terraform variable's values) → manylinux machine names.
ARCHITECTURES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}

# (source relative to the repo, name inside the zip)
SOURCE_TREES: tuple[tuple[str, str], ...] = (("lambda/payments", "payments"),)

# In the Lambda Python runtime already (boto3 and what it pulls in); vendoring them would shadow
# the runtime's copies and add megabytes for nothing.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}
)

# Where Lambda unpacks the package: the source path recorded in the bytecode (the import system
# replaces it with the real location when it loads the .pyc, so it only has to be fixed).
TASK_ROOT = "/var/task"
BYTECODE_TAG = "cpython-" + LAMBDA_PYTHON_VERSION.replace(".", "")

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
COMPRESS_LEVEL = 9

_EXCLUDED_DIR_NAMES = frozenset({"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", "bin"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".DS_Store")
_EXCLUDED_DIST_INFO_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


class BuildError(RuntimeError):
    """The package could not be built (missing sources, pip failure)."""


@dataclass(frozen=True)
class BuildResult:
    path: Path
    sha256_b64: str
    sha256_hex: str
    size: int
    entries: int
    architecture: str
    deps_from_cache: bool
    changed: bool
    seconds: float
    # "cpython-312" when the zip holds bytecode, else None with the reason in bytecode_note.
    bytecode: str | None = None
    bytecode_note: str = ""


# --------------------------------------------------------------------------- requirements


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements(
    path: Path = DEFAULT_REQUIREMENTS, pyproject: Path = REPO_ROOT / "pyproject.toml"
) -> str:
    """Requirement lines for the zip: ``lambda/requirements.txt``, else pyproject's ``lambda`` extra."""
    if path.is_file():
        text = path.read_text()
    elif pyproject.is_file():
        extras = tomllib.loads(pyproject.read_text()).get("project", {}).get("optional-dependencies", {})
        text = "\n".join(extras.get("lambda", []))
    else:
        raise BuildError(f"no requirements: {path} does not exist")
    lines = sorted({line.split("#", 1)[0].strip() for line in text.splitlines()} - {""})
    return "\n".join(lines) + ("\n" if lines else "")


def cache_key(requirements: str, architecture: str) -> str:
    material = "\n".join(
        [requirements, ARCHITECTURES[architecture], LAMBDA_PYTHON_VERSION, *platform_tags(architecture)]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def default_architecture(repo_root: Path = REPO_ROOT) -> str:
    """``OPS_LAMBDA_ARCHITECTURE``, else the root module's ``lambda_architecture`` default, else x86_64.

    Following the Terraform default keeps a plain ``make build`` + ``terraform apply`` consistent:
    compiled wheels (wrapt's extension, for one) must match the functions' instruction set.
    """
    explicit = os.environ.get("OPS_LAMBDA_ARCHITECTURE", "").strip()
    if explicit:
        return explicit
    variables = repo_root / "variables.tf"
    if variables.is_file():
        match = re.search(
            r'variable\s+"lambda_architecture"\s*\{[^}]*?default\s*=\s*"([^"]+)"', variables.read_text(), re.S
        )
        if match and match.group(1) in ARCHITECTURES:
            return match.group(1)
    return "x86_64"


def platform_tags(architecture: str) -> list[str]:
    machine = ARCHITECTURES[architecture]
    # Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 and manylinux2014
    # wheels both load there.
    return [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]


# --------------------------------------------------------------------------- dependencies


def install_dependencies(
    requirements: str, architecture: str, cache_dir: Path = DEFAULT_CACHE, *, offline: bool = False
) -> tuple[Path, bool]:
    """Install the requirements for the Lambda platform into a cached directory.

    Returns (directory, from_cache). The directory is only published once pip succeeded, so an
    interrupted build never leaves a half-filled cache behind.
    """
    target = cache_dir / f"deps-{cache_key(requirements, architecture)}"
    if (target / ".complete").is_file():
        return target, True
    if not requirements.strip():
        target.mkdir(parents=True, exist_ok=True)
        (target / ".complete").write_text("")
        return target, False
    if offline:
        raise BuildError(
            f"dependencies for {architecture} are not cached in {cache_dir} and --offline was given"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="deps-", dir=cache_dir))
    try:
        req_file = staging / "requirements.txt"
        req_file.write_text(requirements)
        install_dir = staging / "site"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(install_dir),
            *[arg for tag in platform_tags(architecture) for arg in ("--platform", tag)],
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON_VERSION,
            "--only-binary=:all:",
            "--no-compile",
            "--cache-dir",
            str(cache_dir / "pip"),
            "-r",
            str(req_file),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise BuildError(f"pip install for {architecture} failed:\n{proc.stderr.strip()[-3000:]}")
        _drop_runtime_provided(install_dir)
        (install_dir / ".complete").write_text(requirements)
        _publish(install_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, False


def _publish(staged: Path, target: Path) -> None:
    """Move a finished cache entry into place. When a concurrent build (another xdist worker)
    published the same entry first, keep theirs: it may be in use, and the contents are equal."""
    if target.exists() and not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)  # left by an interrupted build
    try:
        staged.rename(target)
    except OSError:
        if not (target / ".complete").is_file():
            raise


def _drop_runtime_provided(site: Path) -> None:
    """Delete the distributions the Lambda runtime already ships, using their RECORD file lists."""
    for dist_info in sorted(site.glob("*.dist-info")):
        name = dist_info.name.rsplit("-", 1)[0]
        metadata = dist_info / "METADATA"
        if metadata.is_file():
            match = re.search(r"^Name:\s*(.+)$", metadata.read_text(errors="replace"), re.M)
            if match:
                name = match.group(1).strip()
        if _normalize(name) not in RUNTIME_PROVIDED:
            continue
        record = dist_info / "RECORD"
        tops = {dist_info.name}
        if record.is_file():
            for line in record.read_text().splitlines():
                rel = line.split(",", 1)[0]
                if rel and not rel.startswith(".."):
                    tops.add(rel.split("/", 1)[0])
        for top in tops:
            path = site / top
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


# --------------------------------------------------------------------------- collecting files


def _excluded(rel_parts: tuple[str, ...]) -> bool:
    if any(part in _EXCLUDED_DIR_NAMES for part in rel_parts[:-1]):
        return True
    name = rel_parts[-1]
    if name.endswith(_EXCLUDED_SUFFIXES) or name == ".complete":
        return True
    return len(rel_parts) >= 2 and rel_parts[-2].endswith(".dist-info") and name in _EXCLUDED_DIST_INFO_FILES


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDED_DIR_NAMES)
        for filename in sorted(filenames):
            yield Path(dirpath) / filename


def collect_sources(repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """Our own code: zip name → file."""
    entries: dict[str, Path] = {}
    for src_rel, arc_root in SOURCE_TREES:
        src = repo_root / src_rel
        if src.is_file():
            entries[arc_root] = src
            continue
        if not src.is_dir():
            raise BuildError(f"source {src} is missing")
        for path in _walk(src):
            rel = path.relative_to(src)
            if not _excluded(rel.parts):
                entries[f"{arc_root}/{rel.as_posix()}"] = path
    return entries


def collect_dependencies(site: Path) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for path in _walk(site):
        rel = path.relative_to(site)
        if not _excluded(rel.parts) and not path.is_symlink():
            entries[rel.as_posix()] = path
    return entries


# --------------------------------------------------------------------------- bytecode


def bytecode_name(source_name: str, tag: str = BYTECODE_TAG) -> str:
    """``a/b.py`` → ``a/__pycache__/b.<tag>.pyc`` (what the import system looks for)."""
    folder, _, filename = source_name.rpartition("/")
    stem = filename[: -len(".py")]
    return f"{folder + '/' if folder else ''}__pycache__/{stem}.{tag}.pyc"


def _full_version(python: str) -> str:
    done = subprocess.run(  # noqa: S603 - the interpreter find_python checked
        [python, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def compile_bytecode(
    entries: dict[str, Path], python: str, cache_dir: Path = DEFAULT_CACHE
) -> dict[str, Path]:
    """Bytecode of every ``.py`` entry, compiled by ``python`` (a 3.12): zip name → ``.pyc`` file.

    ``compileall --invalidation-mode unchecked-hash`` with ``PYTHONHASHSEED=0`` (set constants are
    marshalled in iteration order) and the recorded path ``/var/task/<name>``. Cached per interpreter
    version and sources; a source that does not compile fails the build.
    """
    sources = {name: path for name, path in entries.items() if name.endswith(".py")}
    material = hashlib.sha256(_full_version(python).encode())
    for name in sorted(sources):
        material.update(name.encode() + b"\0" + hashlib.sha256(sources[name].read_bytes()).digest())
    target = cache_dir / f"pyc-{material.hexdigest()[:20]}"
    compiled = {bytecode_name(name): target / bytecode_name(name) for name in sources}
    if (target / ".complete").is_file():
        return compiled
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="pyc-", dir=cache_dir))
    try:
        tree = staging / "tree"
        for name, path in sources.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, tree / name)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0"}
        proc = subprocess.run(  # noqa: S603 - the interpreter find_python checked, no shell
            [
                python,
                "-I",
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                "-s",
                str(tree),
                "-p",
                TASK_ROOT,
                str(tree),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
        missing = sorted(name for name in compiled if not (tree / name).is_file())
        if proc.returncode != 0 or missing:
            raise BuildError(
                f"compiling the package with {python} failed (exit {proc.returncode}; no bytecode for "
                f"{missing[:5]}):\n{(proc.stdout + proc.stderr).strip()[-3000:]}"
            )
        (tree / ".complete").write_text("")
        _publish(tree, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return compiled


def lambda_python() -> tuple[str | None, str]:
    """The CPython 3.12 that compiles the bytecode, or None and why there is none."""
    try:
        return find_python(LAMBDA_PYTHON_VERSION), ""
    except PythonNotFoundError as exc:
        return None, str(exc)


# --------------------------------------------------------------------------- zip


def deterministic_zip(entries: dict[str, Path]) -> bytes:
    """Zip bytes that depend only on entry names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.create_system = 3  # Unix, so external_attr carries the permission bits
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name].read_bytes(), compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()


def filebase64sha256(data: bytes) -> str:
    """What Terraform's ``filebase64sha256()`` returns for these bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file of its own, so concurrent builds (pytest-xdist workers each
    building the same package) never interleave or rename each other's files away."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o644)
    Path(tmp).replace(path)


def build_package(
    *,
    architecture: str = "x86_64",
    output: Path = DEFAULT_OUTPUT,
    requirements_path: Path = DEFAULT_REQUIREMENTS,
    cache_dir: Path = DEFAULT_CACHE,
    repo_root: Path = REPO_ROOT,
    offline: bool = False,
    bytecode: bool = True,
) -> BuildResult:
    """Build the zip (and ``<zip>.sha256``); the file is rewritten only when its bytes change.

    ``bytecode=False`` leaves the bytecode out (as a build without a 3.12 interpreter does)."""
    if architecture not in ARCHITECTURES:
        raise BuildError(f"unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    started = time.monotonic()
    requirements = read_requirements(requirements_path, repo_root / "pyproject.toml")
    site, from_cache = install_dependencies(requirements, architecture, cache_dir, offline=offline)
    entries = collect_dependencies(site)
    ours = collect_sources(repo_root)
    clashes = sorted(set(entries) & set(ours))
    if clashes:
        raise BuildError(f"vendored dependencies overwrite our own modules: {clashes[:5]}")
    entries.update(ours)
    python, note = (None, "disabled (bytecode=False)") if not bytecode else lambda_python()
    if python is not None:
        entries.update(compile_bytecode(entries, python, cache_dir))
    data = deterministic_zip(entries)
    digest_b64 = filebase64sha256(data)
    output.parent.mkdir(parents=True, exist_ok=True)
    changed = not output.is_file() or output.read_bytes() != data
    if changed:
        write_atomically(output, data)
    sha_file = output.with_name(output.name + ".sha256")
    if not sha_file.is_file() or sha_file.read_text().strip() != digest_b64:
        write_atomically(sha_file, (digest_b64 + "\n").encode("ascii"))
    return BuildResult(
        path=output,
        sha256_b64=digest_b64,
        sha256_hex=hashlib.sha256(data).hexdigest(),
        size=len(data),
        entries=len(entries),
        architecture=architecture,
        deps_from_cache=from_cache,
        changed=changed,
        seconds=time.monotonic() - started,
        bytecode=BYTECODE_TAG if python is not None else None,
        bytecode_note=note,
    )


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"


def summary_lines(result: BuildResult) -> Iterable[str]:
    yield f"{result.path} ({human_size(result.size)}, {result.entries} files, {result.architecture})"
    yield f"sha256 (base64): {result.sha256_b64}"
    deps = "cached" if result.deps_from_cache else "installed"
    state = "rewritten" if result.changed else "unchanged"
    yield f"dependencies {deps}; package {state}; {result.seconds:.1f} s"
    if result.bytecode:
        yield f"bytecode: {result.bytecode}, unchecked-hash, for every module"
    else:
        yield f"bytecode: none, every cold start compiles the package ({result.bytecode_note})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.build", description="Build the Lambda package.")
    parser.add_argument(
        "--architecture",
        default=None,
        choices=sorted(ARCHITECTURES),
        help="Lambda architecture (env OPS_LAMBDA_ARCHITECTURE; default: the root's lambda_architecture)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="zip path")
    parser.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS, help="requirements file")
    parser.add_argument("--offline", action="store_true", help="fail instead of downloading dependencies")
    args = parser.parse_args(argv)
    try:
        result = build_package(
            architecture=args.architecture or default_architecture(),
            output=args.output,
            requirements_path=args.requirements,
            offline=args.offline,
        )
    except BuildError as exc:
        sys.stderr.write(f"build failed: {exc}\n")
        return 1
    for line in summary_lines(result):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
