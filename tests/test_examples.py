"""The README's example runs as printed and does what it says."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_trains_and_plots(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    acc = float(re.search(r"test accuracy ([0-9.]+)", out.stdout).group(1))
    assert acc > 0.6  # ten classes: chance is 0.1
    assert (tmp_path / "raster.png").stat().st_size > 1000


def test_readme_example_is_the_quickstart_file():
    readme = (ROOT / "README.md").read_text()
    body = (ROOT / "examples" / "quickstart.py").read_text().split('"""', 2)[2].strip()
    assert body in readme
