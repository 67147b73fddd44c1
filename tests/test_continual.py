"""Continual-learning harness: metrics, task builders, HLOP vs fine-tuning on synthetic tasks, CLI errors."""
import json
import math

import numpy as np
import pytest
import torch

from snn.cli import main as snn_main
from snn.functional import reset
from snn.continual import baselines, metrics, net, tasks, trainer
from snn.continual.experiment import config
from snn.continual.methods import get_method
from snn.continual.tasks import Task


# --------------------------------------------------------------------------------------------- metrics
def test_metrics_on_a_hand_made_matrix():
    R = [[0.9, None, None],
         [0.8, 0.95, None],
         [0.7, 0.85, 0.9]]
    assert metrics.acc(R) == pytest.approx((0.7 + 0.85 + 0.9) / 3)
    assert metrics.bwt(R) == pytest.approx(((0.7 - 0.9) + (0.85 - 0.95)) / 2)
    s = metrics.summary(R)
    assert s["matrix"][0][1] is None and s["acc"] == pytest.approx(0.81666, abs=1e-4)
    assert math.isnan(metrics.bwt([[0.5]]))
    assert metrics.summary([[None, None], [0.4, 0.6]])["bwt"] is None  # multitask: last row only


def test_metrics_reject_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        metrics.acc([[0.1, 0.2]])
    with pytest.raises(ValueError, match="last row"):
        metrics.acc([[0.1, None], [0.2, None]])


def test_heatmap_is_written(tmp_path):
    metrics.plot_matrix([[0.9, None], [0.5, 0.8]], tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 1000


# --------------------------------------------------------------------------------------------- tasks
def test_permuted_tasks_share_labels_and_permute_pixels_consistently():
    ts = tasks.permuted(3, "digits", n_train=50, n_test=20, seed=1)
    assert len(ts) == 3 and all(t.head == 0 and t.n_classes == 10 for t in ts)
    a, b = ts[0], ts[1]
    assert torch.equal(a.y_train, b.y_train)
    # the same permutation maps every image of task b from task a's pixels
    flat_a, flat_b = a.x_train.flatten(1), b.x_train.flatten(1)
    assert torch.allclose(flat_a.sum(1), flat_b.sum(1)) and not torch.equal(flat_a, flat_b)


def test_split_tasks_have_two_classes_and_their_own_head():
    ts = tasks.split(5, "digits")
    assert [t.head for t in ts] == [0, 1, 2, 3, 4] and all(t.n_classes == 2 for t in ts)
    assert all(set(t.y_train.tolist()) == {0, 1} for t in ts)
    total = sum(len(t.y_train) + len(t.y_test) for t in ts)
    assert total == 1797


@pytest.mark.parametrize("call, msg", [
    (lambda: tasks.build("mnist"), "unknown benchmark"), (lambda: tasks.split(6, "digits"), "1..5"),
    (lambda: tasks.permuted(0, "digits"), "positive integer"), (lambda: get_method("sgd"), "unknown training"),
    (lambda: baselines.make_strategy("lwf"), "unknown method"), (lambda: config("pfmnist", foo=1), "unknown settings"),
    (lambda: baselines.EWC(lam=-1), "lam must lie"), (lambda: baselines.Replay(per_task=0), "per_task"),
    (lambda: trainer.ContinualTrainer(net.mlp(4, (3,)), epochs=0), "epochs")])
def test_bad_arguments_are_clear_errors(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


# --------------------------------------------------------------------------------------------- HLOP vs fine-tune
def _two_conflicting_tasks(seed=0, d=16):
    """Task A: label = [w·z > 0] with z in dims 0-3. Task B: label = [v·u > 0] with u in dims 4-7, and dims 0-3
    carry task-A-like inputs whose A-rule gives the opposite label, so plain fine-tuning learns B through the
    A dims (overwriting A) while B stays learnable from dims 4-7 alone, orthogonal to A's inputs."""
    g = torch.Generator().manual_seed(seed)
    w, v = torch.randn(4, generator=g), torch.randn(4, generator=g)

    def sample(n, b):
        za = torch.randn(n, 4, generator=g)
        x = torch.zeros(n, d)
        if not b:
            x[:, :4] = za
            return x, (za @ w > 0).long()
        u = torch.randn(n, 4, generator=g)
        y = (u @ v > 0).long()
        agree = (za @ w > 0).long() == y
        za[agree] = -za[agree]
        x[:, :4], x[:, 4:8] = za, u
        return x, y

    return [Task(name, *sample(480, b), *sample(300, b), 0, 2) for name, b in (("A", False), ("B", True))]


def _run(method):
    torch.manual_seed(0)
    model = net.mlp(16, (32,), 2, 1)
    s = baselines.make_strategy(method, hlop=dict(k=baselines.k_schedule([5, 16], [0, 0]), lr=1.0, iterations=5))
    return trainer.ContinualTrainer(model, s, epochs=3, lr=0.1, batch_size=32, T=2, log=None).run(
        _two_conflicting_tasks())


def test_hlop_keeps_the_first_task_while_fine_tuning_forgets():
    ft, hl = _run("finetune"), _run("hlop")
    drop = lambda r: r["matrix"][0][0] - r["matrix"][1][0]
    assert ft["matrix"][0][0] > 0.9 and hl["matrix"][0][0] > 0.9
    assert drop(ft) > 0.4  # fine-tuning forgets A
    assert drop(hl) < 0.03  # HLOP keeps it
    assert hl["matrix"][1][1] > 0.75  # and still learns B (from its own dimensions only)
    assert hl["subspace"] == {"body.1": 5, "heads.0": 16}


def test_strategies_run_end_to_end_on_digits():
    ts = tasks.permuted(2, "digits", n_train=128, n_test=64)
    for name in ("ewc", "replay", "hlop+replay"):
        torch.manual_seed(0)
        s = baselines.make_strategy(name, hlop=dict(k=8), ewc=dict(fisher_batches=2), replay=dict(per_task=16))
        r = trainer.ContinualTrainer(net.mlp(64, (32,), 10, 1), s, epochs=1, batch_size=32, T=2, log=None).run(ts)
        assert np.isfinite(r["acc"]) and r["bwt"] is not None and r["train_cpu_s"] > 0
    r = trainer.ContinualTrainer(net.mlp(64, (32,), 10, 1), None, batch_size=32, T=2, log=None).run_multitask(ts)
    assert r["bwt"] is None and r["matrix"][0] == [None, None]


def test_multi_head_model_routes_each_sample_to_its_head():
    torch.manual_seed(0)
    m = net.mlp(4, (8,), 2, n_heads=3)
    reset(m)
    x = torch.rand(2, 5, 4)
    heads = torch.tensor([0, 2, 1, 1, 0])
    mixed = m(x, heads)
    for i, h in enumerate(heads.tolist()):
        reset(m)
        assert torch.allclose(mixed[:, i], m(x, h)[:, i], atol=1e-6)


# --------------------------------------------------------------------------------------------- CLI
def test_cli_writes_matrix_json_and_heatmap(tmp_path):
    rc = snn_main(["continual", "--benchmark", "pdigits", "--tasks", "2", "--method", "hlop", "--epochs", "1",
                   "--n-train", "64", "--n-test", "32", "--T", "2", "--quiet", "--out", str(tmp_path / "run"),
                   "--json", str(tmp_path / "s.json")])
    assert rc == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert len(s["matrix"]) == 2 and s["method"] == "hlop" and s["train_method"] == "bptt"
    assert (tmp_path / "run" / "matrix.png").exists() and (tmp_path / "run" / "matrix.json").exists()


@pytest.mark.parametrize("argv, msg", [
    (["--benchmark", "cifar"], "invalid choice"), (["--method", "lwf"], "invalid choice"),
    (["--train-method", "sgd"], "invalid choice"), (["--tasks", "0"], "positive integer"),
    (["--hidden", "a,b"], "comma-separated"), (["--T", "-1"], "positive integer")])
def test_cli_bad_flags_are_clear_errors(argv, msg, capsys):
    with pytest.raises(SystemExit):
        snn_main(["continual", *argv])
    assert msg in capsys.readouterr().err


def test_cli_runtime_errors_are_reported(capsys):
    with pytest.raises(SystemExit) as info:
        snn_main(["continual", "--benchmark", "pdigits", "--tasks", "1", "--lr", "-1", "--quiet"])
    assert info.value.code == 2 and "argument --lr: must be a finite number > 0" in capsys.readouterr().err
    rc = snn_main(["continual", "--benchmark", "sdigits", "--tasks", "1", "--hlop-k-first", "1,2,3", "--quiet",
                   "--n-train", "8", "--epochs", "1"])
    assert rc == 1 and "one entry per protected layer" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- training methods
@pytest.mark.parametrize("project", ["gradient", "input"])
@pytest.mark.parametrize("train_method", ["bptt", "dsr", "ottt"])
def test_hlop_updates_stay_orthogonal_to_the_protected_subspace_for_every_training_method(train_method, project):
    """After task 1, every weight change of task 2 lies in the complement of the consolidated subspace:
    ΔW Hᵀ = 0 (the old tasks' inputs see unchanged weights), whichever method made the gradients and whether
    the gradient or the presynaptic rows (with the output gradients) are projected."""
    torch.manual_seed(0)
    tm = get_method(train_method)
    model = net.mlp(64, (32,), 10, 1, v_threshold=0.5, neuron_kind=tm.neuron_kind)
    s = baselines.HLOPStrategy(k=baselines.k_schedule([12, 10], [6, 6]), iterations=1, consolidate_batches=1,
                               project=project, hebbian_every=2, consolidate_iterations=3)
    tr = trainer.ContinualTrainer(model, s, method=tm, epochs=1, batch_size=32, T=2, log=None)
    ts = tasks.permuted(2, "digits", n_train=96, n_test=32)
    snapshot = {}
    original_begin = s.begin_task

    def begin(t, task):
        original_begin(t, task)
        if t == 1:
            snapshot.update({n: p.detach().clone() for n, p in model.named_parameters()})

    s.begin_task = begin
    used, project_inputs = [], s.hlop._project_inputs
    s.hlop._project_inputs = lambda *a: used.append(project_inputs(*a)) or used[-1]
    r = tr.run(ts)
    assert np.isfinite(r["acc"])
    assert any(used) == (project == "input")  # the input path ran where asked (never as a silent fallback)
    for name, p in model.named_parameters():  # neuron parameters (DSR thresholds) are frozen after task 1
        if p.dim() == 0:
            assert torch.equal(p, snapshot[name]), name
    for name, mod, sub in zip(s.hlop.names, s.hlop.modules_, s.hlop.subspaces):
        H = sub.H[:12 if name == "body.1" else 10]  # the neurons consolidated after task 1
        with torch.no_grad():
            dW = torch.cat([mod.weight - snapshot[name + ".weight"], (mod.bias - snapshot[name + ".bias"])[:, None]], 1)
        assert dW.abs().max() > 1e-4, name  # task 2 did change the layer
        assert (dW @ H.t()).abs().max() < 1e-4 * max(1.0, float(dW.abs().max())), name


def test_strategy_options_are_checked():
    with pytest.raises(ValueError, match="consolidate_batches"):
        baselines.HLOPStrategy(consolidate_batches=-1)
    with pytest.raises(ValueError, match="consolidate_iterations"):
        baselines.HLOPStrategy(consolidate_iterations=0)
    with pytest.raises(ValueError, match="hebbian_every"):
        baselines.HLOPStrategy(hebbian_every=0)
    with pytest.raises(ValueError, match="mode"):
        baselines.Replay(mode="sometimes")


class _RecordLR(baselines.Strategy):
    """Records the optimiser's step size after every training step."""
    name = "record"

    def __init__(self):
        self.lrs = []

    def after_step(self):
        self.lrs.append(self.trainer.opt.param_groups[0]["lr"])


def test_cosine_schedule_falls_from_lr_to_zero_within_each_task():
    torch.manual_seed(0)
    s = _RecordLR()
    tr = trainer.ContinualTrainer(net.mlp(64, (8,), 10, 1), s, epochs=2, lr=0.1, batch_size=32, T=2, log=None,
                                  lr_schedule="cosine")
    tr.run(tasks.permuted(2, "digits", n_train=96, n_test=16))
    n = 2 * 3  # 2 epochs of 3 batches per task
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * i / n)) for i in range(n)]
    assert s.lrs == pytest.approx(expected * 2)
    with pytest.raises(ValueError, match="lr_schedule"):
        trainer.ContinualTrainer(net.mlp(64, (8,), 10, 1), None, lr_schedule="step", log=None)


def test_lr_later_sets_the_step_size_of_the_tasks_after_the_first():
    torch.manual_seed(0)
    s = _RecordLR()
    tr = trainer.ContinualTrainer(net.mlp(64, (8,), 10, 1), s, epochs=2, lr=0.1, batch_size=32, T=2, log=None,
                                  lr_schedule="cosine", lr_later=0.02)
    tr.run(tasks.permuted(3, "digits", n_train=96, n_test=16))
    n = 2 * 3
    cos = [0.5 * (1 + math.cos(math.pi * i / n)) for i in range(n)]
    assert s.lrs == pytest.approx([0.1 * c for c in cos] + [0.02 * c for c in cos] * 2)
    s2 = _RecordLR()
    trainer.ContinualTrainer(net.mlp(64, (8,), 10, 1), s2, lr=0.1, batch_size=32, T=2, log=None,
                             lr_later=0.03).run(tasks.permuted(2, "digits", n_train=64, n_test=16))
    assert s2.lrs == pytest.approx([0.1, 0.1, 0.03, 0.03])
    with pytest.raises(ValueError, match="lr_later"):
        trainer.ContinualTrainer(net.mlp(64, (8,), 10, 1), None, lr_later=0.0, log=None)
