"""The README's example runs as printed and does what it says."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_trains_and_plots(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    acc = float(re.search(r"test accuracy ([0-9.]+)", out.stdout).group(1))
    assert acc > 0.6  # ten classes: chance is 0.1
    assert (tmp_path / "raster.png").stat().st_size > 1000


def test_lsm_example_beats_chance_and_names_its_engine(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "lsm_events.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lsm, raw = (float(v) for v in re.search(r"LSM ([0-9.]+), raw events ([0-9.]+)", out.stdout).groups())
    assert lsm > 0.8 and raw > 0.8  # ten digit classes: chance is 0.1
    assert re.search(r"simulated by the (event|torch) engine", out.stdout)


@pytest.mark.parametrize("example", ["quickstart.py", "lsm_events.py"])
def test_readme_examples_are_the_example_files(example):
    readme = (ROOT / "README.md").read_text()
    body = (ROOT / "examples" / example).read_text().split('"""', 2)[2].strip()
    assert body in readme
