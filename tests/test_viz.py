"""Plots: each writes a PNG (atomically) and rejects wrong shapes."""
import numpy as np
import pytest
import torch

from snn import viz

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG


def test_raster_2d_and_3d(tmp_path):
    s = (torch.rand(10, 30) < 0.2).float()
    assert _is_png(viz.raster(s, tmp_path / "a.png", title="x"))
    assert _is_png(viz.raster(torch.rand(5, 2, 4, 3) > 0.5, tmp_path / "b.png"))
    with pytest.raises(ValueError, match="raster"):
        viz.raster(torch.zeros(5), tmp_path / "c.png")


def test_membrane_curves_heatmap(tmp_path):
    assert _is_png(viz.membrane(torch.randn(20, 3), tmp_path / "v.png", v_threshold=1.0))
    assert _is_png(viz.curves({"train_loss": [1.0, 0.5], "test_acc": [0.5, 0.7], "note": "x"}, tmp_path / "c.png"))
    m = np.array([[0.9, np.nan], [0.8, 0.95]])
    assert _is_png(viz.heatmap(m, tmp_path / "h.png", "task", "after task", "accuracy"))
    with pytest.raises(ValueError, match="heatmap"):
        viz.heatmap(np.zeros(3), tmp_path / "bad.png")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind
