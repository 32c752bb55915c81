"""The CLI contract: exit 2 with one `error:` line for bad input, no traceback, no output."""
import subprocess

import pytest

from testpaths import CONFIGS


def run(cmd, *args, cwd=None):
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_user_error(proc, fragment):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, fragment", [
    (["nature", "filter.members=1"], "filter.members=1"),
    (["nature", "nosuch.key=1"], "unknown config section [nosuch]"),
    (["nature", "model.nxx=3"], "unknown config key model.nxx"),
    (["nature", "model.nx=abc"], "model.nx='abc'"),
    (["nature", "osse.obs_sigma=-1"], "osse.obs_sigma=-1.0"),
    (["nature", "-c", "/nonexistent/x.toml"], "/nonexistent/x.toml"),
    (["nature", "--chunk", "x"], "--chunk"),
    (["nosuchcommand"], "nosuchcommand"),
])
def test_bad_input_exit_2_one_line(genenkf_cmd, tmp_path, args, fragment):
    proc = run(genenkf_cmd, *args, "--out", str(tmp_path / "out")) if args[0] == "nature" \
        else run(genenkf_cmd, *args)
    assert_user_error(proc, fragment)
    assert not (tmp_path / "out").exists()


def test_help_lists_every_command(genenkf_cmd):
    proc = run(genenkf_cmd, "--help")
    assert proc.returncode == 0
    for name in ["nature", "dataset", "train", "assimilate", "campaign", "report", "bench",
                 "jobs", "demo"]:
        assert name in proc.stdout


def test_nature_tiny_writes_config_and_log(genenkf_cmd, tmp_path):
    proc = run(genenkf_cmd, "nature", "-c", str(CONFIGS / "tiny.toml"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"nature.nc", "config.toml", "log.txt"}
    assert "nature" in (tmp_path / "log.txt").read_text()
    assert "nx = 16" in (tmp_path / "config.toml").read_text()


def test_default_out_under_runs(genenkf_cmd, tmp_path):
    proc = run(genenkf_cmd, "nature", "-c", str(CONFIGS / "tiny.toml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("nature-") and (run_dir / "nature.nc").is_file()
