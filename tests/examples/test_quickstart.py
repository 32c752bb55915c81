"""docs/examples/quickstart.py runs as a script: the table, both figures, nothing else written."""
import os
import subprocess
import sys

from testpaths import REPO


def test_quickstart_runs(tmp_path):
    figures, cwd = tmp_path / "figures", tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "GENENKF_FIGURES": str(figures),
           "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "docs" / "examples" / "quickstart.py")],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("time-mean analysis RMSE"):].splitlines()
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in table[2:5]}
    assert set(rows) == {"noda", "nudging", "letkf"}
    for f in range(2):  # the LETKF beats nudging, which beats the free run
        assert rows["letkf"][f] < rows["nudging"][f] < rows["noda"][f]
    assert sorted(p.name for p in figures.iterdir()) == ["hovmoller.png", "rmse_time.png"]
    assert all(p.stat().st_size > 10_000 for p in figures.iterdir())
    assert not list(cwd.iterdir())
