"""The Lambda package is reproducible: same inputs → same bytes → no spurious Terraform diffs."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from devkit.build import (
    BYTECODE_TAG,
    DEFAULT_CACHE,
    FIXED_DATE_TIME,
    REPO_ROOT,
    RUNTIME_PROVIDED,
    build_package,
    bytecode_name,
    cache_key,
    deterministic_zip,
    filebase64sha256,
    platform_tags,
    read_requirements,
)
from devkit.pythons import find_python


def _copy_sources(dest: Path) -> Path:
    shutil.copytree(
        REPO_ROOT / "lambda/payments", dest / "lambda/payments", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(REPO_ROOT / "lambda/requirements.txt", dest / "lambda/requirements.txt")
    shutil.copy2(REPO_ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_sources(tmp_path_factory.mktemp("src"))


def _build(root: Path, out: Path) -> bytes:
    build_package(
        repo_root=root,
        output=out,
        requirements_path=root / "lambda/requirements.txt",
        cache_dir=DEFAULT_CACHE,
    )
    return out.read_bytes()


def test_building_twice_yields_identical_bytes(source_copy: Path, tmp_path: Path) -> None:
    first = _build(source_copy, tmp_path / "a.zip")
    # Touching every file changes mtimes only: the bytes must not move.
    for path in source_copy.rglob("*"):
        if path.is_file():
            path.touch()
    second = _build(source_copy, tmp_path / "b.zip")
    assert first == second


def test_changing_a_source_file_changes_the_hash(source_copy: Path, tmp_path: Path) -> None:
    before = _build(source_copy, tmp_path / "before.zip")
    module = next((source_copy / "lambda/payments").glob("*.py"))
    original = module.read_text()
    try:
        module.write_text(original + "\n# a behaviour change\n")
        after = _build(source_copy, tmp_path / "after.zip")
    finally:
        module.write_text(original)
    assert filebase64sha256(before) != filebase64sha256(after)


def test_package_holds_only_payments_and_vendored_libraries_and_their_bytecode(lambda_package) -> None:
    with zipfile.ZipFile(lambda_package.path) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    handler_modules = sorted(p.name for p in (REPO_ROOT / "lambda/payments/handlers").glob("*.py"))
    assert handler_modules, "lambda/payments/handlers holds no modules"
    for module in handler_modules:
        assert f"payments/handlers/{module}" in names
    assert "payments/schemas/create_transaction.json" in names
    assert any(n.startswith("payments/jobs/") for n in names)
    # payments is the only first-party code: no operator CLI, no dev tooling, no tests.
    assert not any(n.startswith(("ops/", "devkit/", "tests/", "handlers/")) for n in names)
    assert any(n.startswith("aws_lambda_powertools/") for n in names)
    assert any(n.startswith("fastjsonschema/") for n in names)
    # The only bytecode is ours: one cpython-312 .pyc per module (test below), nothing else cached.
    allowed = {bytecode_name(n) for n in names if n.endswith(".py")}
    assert not [n for n in names if (n.endswith((".pyc", ".pyo")) or "__pycache__" in n) and n not in allowed]
    assert not [n for n in names if n.endswith(".dist-info/RECORD") or n.endswith(".dist-info/INSTALLER")]
    tops = {n.split("/", 1)[0].split("-", 1)[0].lower() for n in names}
    assert not tops & {"boto3", "botocore", "s3transfer"}
    assert names == sorted(names)
    assert all(i.date_time == FIXED_DATE_TIME for i in infos)
    assert all((i.external_attr >> 16) == 0o100644 for i in infos)
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)


def test_sha256_file_matches_terraform_filebase64sha256(lambda_package) -> None:
    data = lambda_package.path.read_bytes()
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
    sha_file = lambda_package.path.with_name(lambda_package.path.name + ".sha256")
    assert sha_file.read_text().strip() == expected == lambda_package.sha256_b64


def test_zip_bytes_do_not_depend_on_entry_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("A = 1\n")
    b.write_text("B = 2\n")
    assert deterministic_zip({"x/a.py": a, "x/b.py": b}) == deterministic_zip({"x/b.py": b, "x/a.py": a})


def test_dependency_cache_is_keyed_by_requirements_and_architecture() -> None:
    reqs = read_requirements()
    assert cache_key(reqs, "x86_64") != cache_key(reqs, "arm64")
    assert cache_key(reqs, "x86_64") != cache_key(reqs + "six==1.17.0\n", "x86_64")
    assert cache_key(reqs, "arm64") == cache_key(reqs, "aarch64")
    assert all("aarch64" in tag for tag in platform_tags("arm64"))


def test_requirements_fall_back_to_the_pyproject_lambda_extra(tmp_path: Path) -> None:
    from_extra = read_requirements(tmp_path / "missing.txt", REPO_ROOT / "pyproject.toml")
    assert "aws-lambda-powertools==3.23.0" in from_extra.splitlines()
    assert set(from_extra.splitlines()) <= set(read_requirements().splitlines())  # same pins


def test_runtime_provided_libraries_are_never_vendored() -> None:
    assert {"boto3", "botocore", "s3transfer"} <= RUNTIME_PROVIDED


# ------------------------------------------------------------------------------------------
# Bytecode: CPython 3.12, unchecked hash-based, one .pyc per module, reproducible.

# importlib.util.MAGIC_NUMBER of CPython 3.12 (magic 3531): the header's first 4 bytes.
CPYTHON_312_MAGIC = (3531).to_bytes(2, "little") + b"\r\n"
UNCHECKED_HASH_FLAGS = 0b01  # PEP 552: bit 0 = hash-based, bit 1 = check_source (off)
HASH_CHECK = """
import importlib.util, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf:
    sources = [n for n in zf.namelist() if n.endswith(".py")]
    for name in sources:
        folder, _, file = name.rpartition("/")
        pyc = (folder + "/" if folder else "") + "__pycache__/" + file[:-3] + ".cpython-312.pyc"
        if zf.read(pyc)[8:16] != importlib.util.source_hash(zf.read(name)):
            print("stale:" + name)
print(f"checked:{len(sources)}")
"""


def test_every_module_in_the_zip_has_unchecked_hash_cpython_312_bytecode_of_its_source(
    lambda_package,
) -> None:
    if lambda_package.bytecode is None:
        pytest.skip(f"built without bytecode: {lambda_package.bytecode_note}")
    assert lambda_package.bytecode == BYTECODE_TAG == "cpython-312"
    with zipfile.ZipFile(lambda_package.path) as zf:
        names = set(zf.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        pycs = sorted(n for n in names if n.endswith(".pyc"))
        assert len(sources) > 400 and any(n.startswith("payments/handlers/") for n in sources)
        # Complete: exactly one .pyc per module, where the import system looks for it.
        assert pycs == sorted(bytecode_name(n) for n in sources)
        for source in sources:
            header = zf.read(bytecode_name(source))[:16]
            assert header[:4] == CPYTHON_312_MAGIC, source
            assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_FLAGS, source
    # Each .pyc records its own source's hash (keyed by the 3.12 magic, so 3.12 computes it): what
    # `--check-hash-based-pycs always` would verify. A stale .pyc would fail here.
    stale = subprocess.run(  # noqa: S603 - the 3.12 interpreter, a fixed script
        [find_python("3.12"), "-I", "-c", HASH_CHECK, str(lambda_package.path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert stale == [f"checked:{len(sources)}"]


def test_bytecode_is_reproducible_and_follows_the_sources(source_copy: Path, tmp_path: Path) -> None:
    python = find_python("3.12")
    # Two builds, each compiling from scratch (own caches): identical bytes.
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    for out, cache in ((first, tmp_path / "cache-a"), (second, tmp_path / "cache-b")):
        shutil.copytree(
            DEFAULT_CACHE, cache, ignore=shutil.ignore_patterns("pyc-*", "lambda-runtimes", "plans", "pip")
        )
        result = build_package(
            repo_root=source_copy,
            output=out,
            requirements_path=source_copy / "lambda/requirements.txt",
            cache_dir=cache,
            offline=True,
        )
        assert result.bytecode == "cpython-312", (python, result.bytecode_note)
    assert first.read_bytes() == second.read_bytes()
    module = next((source_copy / "lambda/payments").glob("*.py"))
    original = module.read_text()
    try:
        module.write_text(original + "\nCHANGED = True\n")
        build_package(
            repo_root=source_copy,
            output=tmp_path / "c.zip",
            requirements_path=source_copy / "lambda/requirements.txt",
            cache_dir=tmp_path / "cache-a",
            offline=True,
        )
    finally:
        module.write_text(original)
    name = bytecode_name(f"payments/{module.name}")
    with zipfile.ZipFile(first) as before, zipfile.ZipFile(tmp_path / "c.zip") as after:
        assert before.read(name) != after.read(name)
        assert before.read(name)[8:16] != after.read(name)[8:16]  # the recorded source hash moved


def test_without_bytecode_the_zip_holds_sources_only(source_copy: Path, tmp_path: Path) -> None:
    result = build_package(
        repo_root=source_copy,
        output=tmp_path / "plain.zip",
        requirements_path=source_copy / "lambda/requirements.txt",
        cache_dir=DEFAULT_CACHE,
        bytecode=False,
    )
    assert result.bytecode is None
    with zipfile.ZipFile(result.path) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".pyc") or "__pycache__" in n]
