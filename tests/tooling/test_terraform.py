"""Terraform runner helpers: mirror discovery, CLI config, the emulator override, scratch copies."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devkit.terraform import (
    AWS_PROVIDER_SOURCE,
    EMULATOR_ENDPOINT_SERVICES,
    OVERRIDE_FILENAME,
    PROVIDER_MAX_ATTEMPTS,
    REPO_ROOT,
    Terraform,
    TerraformError,
    error_blocks,
    failed_calls,
    find_provider_mirror,
    implied_mirror_dirs,
    is_transient,
    mirror_has_aws_provider,
    planned_resources,
    platform_dir,
    prepare_workdir,
    render_override,
    search_for_mirror,
    terraform_env,
)
from devkit.terraform.mirror import search_roots
from devkit.terraform.workdir import local_stage_outputs

TERRAFORM = shutil.which("terraform")


def _fake_mirror(root: Path) -> Path:
    (root / AWS_PROVIDER_SOURCE / "5.100.0" / platform_dir()).mkdir(parents=True)
    return root


def test_explicit_mirror_variable_wins(tmp_path: Path) -> None:
    mirror = _fake_mirror(tmp_path / "explicit")
    implied = _fake_mirror(tmp_path / "implied")
    _fake_mirror(tmp_path / "root" / "searched")
    found = find_provider_mirror(
        {"TF_PLUGIN_MIRROR": str(mirror)}, implied_dirs=[implied], roots=[tmp_path / "root"]
    )
    assert found == mirror.resolve()


def test_explicit_mirror_without_the_provider_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TerraformError, match="does not contain"):
        find_provider_mirror({"TF_PLUGIN_MIRROR": str(tmp_path)}, implied_dirs=[], roots=[])


@pytest.mark.skipif(sys.platform == "darwin", reason="Linux and other Unix directories")
def test_implied_mirror_directories_follow_terraform() -> None:
    env = {"HOME": "/h", "XDG_DATA_HOME": "/data", "XDG_DATA_DIRS": "/d1:/d2"}
    assert implied_mirror_dirs(env) == [
        Path("/h/.terraform.d/plugins"),
        Path("/data/terraform/plugins"),
        Path("/d1/terraform/plugins"),
        Path("/d2/terraform/plugins"),
    ]
    assert implied_mirror_dirs({"HOME": "/h"}) == [
        Path("/h/.terraform.d/plugins"),
        Path("/h/.local/share/terraform/plugins"),
        Path("/usr/local/share/terraform/plugins"),
        Path("/usr/share/terraform/plugins"),
    ]


def test_an_implied_mirror_directory_is_found_before_the_search(tmp_path: Path) -> None:
    home = tmp_path / "home"
    implied = _fake_mirror(home / ".terraform.d" / "plugins")
    _fake_mirror(tmp_path / "root" / "other")
    env = {"HOME": str(home), "XDG_DATA_DIRS": str(tmp_path / "nothing")}
    assert find_provider_mirror(env, roots=[tmp_path / "root"]) == implied.resolve()
    xdg = _fake_mirror(tmp_path / "xdg" / "terraform" / "plugins")
    env = {"HOME": str(tmp_path / "nohome"), "XDG_DATA_HOME": str(tmp_path / "xdg"), "XDG_DATA_DIRS": "/x"}
    assert find_provider_mirror(env, roots=[]) == xdg.resolve()


def test_the_bounded_search_finds_a_mirror_laid_out_below_a_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    deep = _fake_mirror(root / "x" / "y" / "z")  # depth 3: found
    env = {"HOME": str(tmp_path / "home"), "XDG_DATA_DIRS": str(tmp_path / "nothing")}
    assert find_provider_mirror(env, roots=[root]) == deep.resolve()
    shallow = _fake_mirror(tmp_path / "root2" / "mirror")
    assert search_for_mirror([root, tmp_path / "root2"]) == shallow.resolve()  # the shallowest wins
    too_deep = tmp_path / "root3"
    _fake_mirror(too_deep / "a" / "b" / "c" / "d")
    _fake_mirror(too_deep / ".hidden")
    assert search_for_mirror([too_deep]) is None
    # With the home directory as a root (the default roots include "~").
    _fake_mirror(tmp_path / "home" / "tools" / "providers")
    assert search_roots({"HOME": str(tmp_path / "home")})[-1] == tmp_path / "home"
    assert (
        search_for_mirror(search_roots({"HOME": str(tmp_path / "home")})[-1:])
        == (tmp_path / "home" / "tools" / "providers").resolve()
    )


def test_packed_mirror_layout_is_recognised(tmp_path: Path) -> None:
    provider = tmp_path / AWS_PROVIDER_SOURCE
    provider.mkdir(parents=True)
    (provider / f"terraform-provider-aws_5.100.0_{platform_dir()}.zip").write_bytes(b"")
    assert find_provider_mirror({}, implied_dirs=[tmp_path], roots=[]) == tmp_path.resolve()
    other = tmp_path / "other" / AWS_PROVIDER_SOURCE
    other.mkdir(parents=True)
    (other / "terraform-provider-aws_5.100.0_plan9_mips.zip").write_bytes(b"")
    assert not mirror_has_aws_provider(tmp_path / "other")


def test_cli_config_points_at_the_mirror_for_our_runs_only(tmp_path: Path) -> None:
    mirror = _fake_mirror(tmp_path / "mirror")
    base = {"TF_CLI_CONFIG_FILE": "/nonexistent/terraformrc", "PATH": "/usr/bin", "TF_PLUGIN_MIRROR": ""}
    env = terraform_env(base, local_dir=tmp_path / "local", implied_dirs=[mirror], roots=[])
    config = Path(env["TF_CLI_CONFIG_FILE"])
    assert config == tmp_path / "local" / "terraformrc"
    text = config.read_text()
    assert "filesystem_mirror" in text and json.dumps(str(mirror.resolve())) in text
    assert f'exclude = ["{AWS_PROVIDER_SOURCE}"]' in text
    assert base["TF_CLI_CONFIG_FILE"] == "/nonexistent/terraformrc"  # caller untouched


def test_without_a_mirror_there_is_no_cli_config(tmp_path: Path) -> None:
    """Online users: no mirror anywhere, nothing written, a dangling TF_CLI_CONFIG_FILE dropped."""
    base = {
        "TF_CLI_CONFIG_FILE": str(tmp_path / "nope"),
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_DIRS": str(tmp_path / "share"),
    }
    (tmp_path / "home" / ".terraform.d" / "plugins").mkdir(parents=True)  # empty: not a mirror
    env = terraform_env(base, local_dir=tmp_path / "local", roots=[tmp_path / "home"])
    assert "TF_CLI_CONFIG_FILE" not in env
    assert not (tmp_path / "local" / "terraformrc").exists()
    existing = tmp_path / "mine.tfrc"
    existing.write_text("")
    env = terraform_env({"TF_CLI_CONFIG_FILE": str(existing)}, local_dir=tmp_path, implied_dirs=[], roots=[])
    assert env["TF_CLI_CONFIG_FILE"] == str(existing)


def test_the_environment_variable_is_read_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = _fake_mirror(tmp_path / "m")
    monkeypatch.setenv("TF_PLUGIN_MIRROR", str(mirror))
    assert find_provider_mirror() == mirror.resolve()
    monkeypatch.setenv("TF_PLUGIN_MIRROR", str(tmp_path / "empty"))
    with pytest.raises(TerraformError, match="TF_PLUGIN_MIRROR"):
        terraform_env(local_dir=tmp_path / "local")


def test_override_sets_test_credentials_fail_fast_retries_and_every_endpoint() -> None:
    text = render_override("http://127.0.0.1:4566")
    for service in EMULATOR_ENDPOINT_SERVICES:
        assert f"{service} " in text
    assert text.count('"http://127.0.0.1:4566"') == len(EMULATOR_ENDPOINT_SERVICES)
    assert f"max_retries                 = {PROVIDER_MAX_ATTEMPTS}" in text
    assert 2 <= PROVIDER_MAX_ATTEMPTS <= 5  # SDK retries absorb the client race; 500s still fail fast
    assert 'access_key                  = "test"' in text
    assert "s3_use_path_style           = true" in text
    assert not re.search(r"^\s*region\s*=", text, re.M)  # the root's region logic stays in charge


@pytest.mark.skipif(TERRAFORM is None, reason="terraform not installed")
def test_override_is_canonically_formatted_hcl() -> None:
    text = render_override(
        "http://127.0.0.1:4566",
        aliases=["replica"],
        local_backend=True,
        stage_outputs=("module.api.rest_api_id", "module.api.stage_name"),
    )
    proc = subprocess.run(  # noqa: S603 - the installed terraform binary
        [TERRAFORM or "terraform", "fmt", "-"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == text


def test_workdir_gets_the_override_and_the_repository_does_not(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "modules/x").mkdir(parents=True)
    (root / "lambda/payments/schemas").mkdir(parents=True)
    (root / "main.tf").write_text('provider "aws" {\n  alias  = "edge"\n  region = "us-east-1"\n}\n')
    (root / "modules/x/main.tf").write_text("")
    (root / "lambda/payments/schemas/s.json").write_text("{}")
    package = tmp_path / "pkg.zip"
    package.write_bytes(b"zip")
    dest = prepare_workdir(tmp_path / "work", "http://127.0.0.1:1234", source=root, package_path=package)
    assert (dest / "main.tf").is_file()
    assert (dest / "modules/x/main.tf").is_file()
    assert (dest / "lambda/payments/schemas/s.json").read_text() == "{}"
    assert (dest / "build/lambda/payment-app.zip").read_bytes() == b"zip"
    override = (dest / OVERRIDE_FILENAME).read_text()
    assert re.search(r'alias\s+= "edge"', override) and override.count('provider "aws"') == 2
    assert not list(root.glob("*_override.tf"))
    # Re-preparing for another endpoint rewrites the override in place.
    prepare_workdir(dest, "http://127.0.0.1:9999", source=root, package_path=package)
    assert "9999" in (dest / OVERRIDE_FILENAME).read_text()


def test_local_copy_of_the_root_answers_api_invoke_url_with_the_emulator_stage_url(tmp_path: Path) -> None:
    dest = prepare_workdir(tmp_path / "stack", "http://127.0.0.1:4321", source=REPO_ROOT)
    override = (dest / OVERRIDE_FILENAME).read_text()
    assert local_stage_outputs(REPO_ROOT) == ("module.api.rest_api_id", "module.api.stage_name")
    assert 'output "api_invoke_url" {' in override
    assert (
        '"http://127.0.0.1:4321/restapis/${module.api.rest_api_id}/${module.api.stage_name}/_user_request_"'
        in override
    )
    # A configuration without those outputs gets no output override (it would not apply).
    assert 'output "' not in render_override("http://127.0.0.1:1")
    assert local_stage_outputs(tmp_path) is None


def test_repository_root_never_holds_an_override_file() -> None:
    assert not list(REPO_ROOT.glob("*_override.tf"))


def test_runner_times_out_instead_of_hanging(tmp_path: Path) -> None:
    fake = tmp_path / "terraform"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    tf = Terraform(tmp_path, binary=str(fake), timeout=1, env={"PATH": "/usr/bin:/bin"})
    with pytest.raises(TerraformError, match="timed out"):
        tf.run("plan")
    assert tf.last_result is not None and tf.last_result.seconds < 25


def test_runner_reports_the_error_text(tmp_path: Path) -> None:
    fake = tmp_path / "terraform"
    fake.write_text(
        textwrap.dedent("""\
        #!/bin/sh
        echo "some progress"
        echo "Error: Invalid reference" >&2
        exit 1
    """)
    )
    fake.chmod(0o755)
    log = tmp_path / "tf.log"
    tf = Terraform(tmp_path, binary=str(fake), timeout=30, env={"PATH": "/usr/bin:/bin"}, log_path=log)
    with pytest.raises(TerraformError, match="Invalid reference"):
        tf.run("apply")
    assert "some progress" in log.read_text()


def test_planned_resources_flattens_child_modules_and_skips_data_sources() -> None:
    plan = {
        "planned_values": {
            "root_module": {
                "resources": [
                    {
                        "address": "aws_sqs_queue.a",
                        "mode": "managed",
                        "type": "aws_sqs_queue",
                        "name": "a",
                        "values": {"x": 1},
                    },
                    {
                        "address": "data.aws_region.r",
                        "mode": "data",
                        "type": "aws_region",
                        "name": "r",
                        "values": {},
                    },
                ],
                "child_modules": [
                    {
                        "address": "module.m",
                        "resources": [
                            {
                                "address": "module.m.aws_sns_topic.t",
                                "mode": "managed",
                                "type": "aws_sns_topic",
                                "name": "t",
                                "values": {},
                            }
                        ],
                        "child_modules": [
                            {
                                "resources": [
                                    {
                                        "address": "module.m.module.n.aws_s3_bucket.b",
                                        "type": "aws_s3_bucket",
                                        "name": "b",
                                    }
                                ]
                            }
                        ],
                    }
                ],
            }
        }
    }
    flat = planned_resources(plan)
    assert [r["address"] for r in flat] == [
        "aws_sqs_queue.a",
        "module.m.aws_sns_topic.t",
        "module.m.module.n.aws_s3_bucket.b",
    ]
    assert flat[0] == {"address": "aws_sqs_queue.a", "type": "aws_sqs_queue", "name": "a", "values": {"x": 1}}
    assert flat[2]["values"] == {}


def test_transient_connection_drops_are_retried_and_real_errors_are_not(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    fake = tmp_path / "terraform"
    fake.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        echo x >> {counter}
        if [ "$(wc -l < {counter})" -lt 2 ]; then
          echo "Error: read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection" >&2
          exit 1
        fi
        echo "Apply complete!"
    """)
    )
    fake.chmod(0o755)
    tf = Terraform(tmp_path, binary=str(fake), timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert "Apply complete!" in tf.apply_vars({"environment_suffix": "t"}).out
    assert counter.read_text().count("x") == 2

    failing = tmp_path / "failing"
    failing.write_text('#!/bin/sh\necho "Error: Invalid value for variable" >&2\nexit 1\n')
    failing.chmod(0o755)
    tf = Terraform(tmp_path, binary=str(failing), timeout=30, env={"PATH": "/usr/bin:/bin"})
    with pytest.raises(TerraformError, match="Invalid value"):
        tf.apply_vars({})


_SSM_ERROR = (
    "Error: creating SSM Parameter (/app/creds): operation error SSM: PutParameter, https response error "
    "StatusCode: 400, api error ValidationException: bad value"
)
_DROPPED = (
    "exceeded maximum number of attempts, 2, https response error StatusCode: 200, decomposing response: "
    "read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection"
)
_IAM_DROPPED = f"Error: reading IAM Role Policy (r:p): operation error IAM: GetRolePolicy, {_DROPPED}"
_PUT_DROPPED = f"Error: putting IAM Role (r) Policy (p): operation error IAM: PutRolePolicy, {_DROPPED}"


def test_error_blocks_keep_summary_resource_and_detail() -> None:
    output = textwrap.dedent(f"""\
        aws_kms_key.k: Creating...

        {_SSM_ERROR}

          with module.storage.aws_ssm_parameter.processor_credentials,
          on modules/storage/main.tf line 40, in resource "aws_ssm_parameter" "processor_credentials":
          40: resource "aws_ssm_parameter" "processor_credentials" {{

        {_IAM_DROPPED}

          with module.functions.aws_iam_role_policy.this["status"],
          on modules/functions/iam.tf line 300, in resource "aws_iam_role_policy" "this":
        """)
    blocks = error_blocks(output)
    assert len(blocks) == 2
    assert (
        blocks[0].startswith("Error: creating SSM Parameter")
        and "ValidationException: bad value" in blocks[0]
    )
    assert 'resource "aws_ssm_parameter" "processor_credentials"' in blocks[0]
    assert failed_calls(blocks) == ["SSM: PutParameter", "IAM: GetRolePolicy"]
    assert [is_transient(b) for b in blocks] == [False, True]
    # The diagnostic box terraform draws when colour is on is stripped the same way.
    boxed = "\n".join(f"\u2502 {line}" for line in ["Error: Invalid value for variable", "", "detail text"])
    assert error_blocks("\u2577\n" + boxed + "\n\u2575\n") == [
        "Error: Invalid value for variable\n\ndetail text"
    ]


@pytest.mark.skipif(TERRAFORM is None, reason="terraform not installed")
def test_failed_apply_shows_the_error_block_and_keeps_the_log(tmp_path: Path) -> None:
    """A deliberately broken variable: the message carries terraform's Error block and the kept log,
    with the human UI and with the machine-readable one (``-json``) alike."""
    workdir = prepare_workdir(tmp_path / "stack", "http://127.0.0.1:1")
    events: list[dict[str, object]] = []
    tf = Terraform(
        workdir,
        timeout=300,
        log_path=tmp_path / "tf.log",
        failed_log_dir=tmp_path / "logs",
        on_event=events.append,
    )
    tf.init_dir()
    blocks: list[list[str]] = []
    for json_ui in (False, True):
        with pytest.raises(TerraformError) as caught:
            tf.apply_vars({"environment_suffix": "Not_Valid!"}, json_ui=json_ui)
        message = str(caught.value)
        assert "Error: Invalid value for variable" in message
        assert 'var.environment_suffix is "Not_Valid!"' in message
        assert "environment_suffix must be 2-20 characters" in message  # the detail, not only the summary
        kept = caught.value.log_path
        assert kept is not None and kept.parent == tmp_path / "logs" and f"(full log: {kept})" in message
        assert "Error: Invalid value for variable" in kept.read_text()
        assert tf.retries == []  # a real error is not re-run
        blocks.append(caught.value.blocks)
    # The same text from the diagnostic message as from the human UI (which wraps the detail).
    assert [" ".join(b.split()) for b in blocks[0]] == [" ".join(b.split()) for b in blocks[1]]
    assert events and events[0]["type"] == "version"
    assert any(event["type"] == "diagnostic" for event in events)
    assert '"@level"' not in (tmp_path / "tf.log").read_text()  # the log keeps the human text


def test_transient_reruns_are_recorded_with_the_failing_call(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    fake = tmp_path / "terraform"
    fake.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        echo x >> {counter}
        if [ "$(wc -l < {counter})" -lt 2 ]; then
          echo "{_PUT_DROPPED}" >&2
          exit 1
        fi
        echo "Apply complete!"
    """)
    )
    fake.chmod(0o755)
    log = tmp_path / "tf.log"
    lines: list[str] = []
    tf = Terraform(
        tmp_path,
        binary=str(fake),
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
        log_path=log,
        on_line=lines.append,
        failed_log_dir=tmp_path / "logs",
    )
    tf.apply_vars({})
    assert [(cmd, calls) for cmd, calls, _ in tf.retries] == [("apply", ["IAM: PutRolePolicy"])]
    assert any("IAM: PutRolePolicy" in line and "re-running terraform apply" in line for line in lines)
    assert "transient emulator connection error in terraform apply (IAM: PutRolePolicy)" in log.read_text()
    assert len(list((tmp_path / "logs").glob("terraform-apply-*.log"))) == 1
