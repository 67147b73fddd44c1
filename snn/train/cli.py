"""``snn train`` and ``snn demo``."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import (add_json_option, declare_output, existing_dir, int_list, nonnegative_float, positive_float,
                   positive_int, refuse_to_overwrite, seed)
from ..io import atomic_write_json
from .config import ENCODINGS, OPTIMIZERS, TrainConfig, dataset_names, method_names, model_names, neuron_names

__all__ = ["register", "train_command", "demo_command", "DEMO_CONFIG"]

# The demo: a small csnn on the embedded 8x8 digits; about half a minute on 2 CPU cores.
DEMO_CONFIG = dict(dataset="digits", model="csnn", channels=[16, 32], neuron="lif", method="bptt", T=6,
                   epochs=8, batch_size=32, lr=3e-3, seed=0)


# What a run leaves in its --out directory; a new run refuses a directory holding any of them.
TRAIN_RESULTS = ("checkpoint.pt", "history.json")
DEMO_RESULTS = TRAIN_RESULTS + ("summary.json", "raster.png", "curves.png")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from ..models import NORMS

    p.add_argument("--dataset", default=TrainConfig.dataset, choices=dataset_names(),
                   help="a registered data set (snn.data.available()); auto: Fashion-MNIST when its files are "
                        "found, else the embedded digits")
    p.add_argument("--model", default=TrainConfig.model, choices=model_names(),
                   help="a registered model (snn.models.available())")
    p.add_argument("--neuron", default=TrainConfig.neuron, choices=neuron_names())
    p.add_argument("--method", default=TrainConfig.method, choices=method_names(),
                   help="bptt: surrogate gradients through time; dsr: differentiation on spike representation "
                        "(lif/if); ottt: online training through time; or a registered method")
    p.add_argument("--ottt-mode", default=TrainConfig.ottt_mode, choices=("A", "O"),
                   help="OTTT_A: one update per batch; OTTT_O: an update every time step")
    p.add_argument("--T", type=positive_int, default=TrainConfig.T,
                   help="time steps (default: 4 for images; a sequence data set's own number of frames, or this "
                        "many)")
    p.add_argument("--epochs", type=positive_int, default=TrainConfig.epochs)
    p.add_argument("--batch-size", type=positive_int, default=TrainConfig.batch_size,
                   help="per process (global = this x processes); default: the data set's (digits 32, "
                        "fashion-mnist 128)")
    p.add_argument("--lr", type=positive_float, default=TrainConfig.lr,
                   help=f"learning rate (default {TrainConfig.lr})")
    p.add_argument("--optimizer", default=TrainConfig.optimizer, choices=OPTIMIZERS)
    p.add_argument("--weight-decay", type=nonnegative_float, default=TrainConfig.weight_decay)
    p.add_argument("--seed", type=seed, default=TrainConfig.seed)
    p.add_argument("--data-dir", type=existing_dir, default=TrainConfig.data_dir,
                   help="root directory of the data set's files (Fashion-MNIST: its IDX files)")
    p.add_argument("--backend", default=TrainConfig.backend, help="neuron kernels: auto|torch|cpp|cuda|triton")
    p.add_argument("--encoding", default=TrainConfig.encoding, choices=ENCODINGS, help="of static images")
    p.add_argument("--amp", default=TrainConfig.amp, choices=("bf16", "fp16"),
                   help="mixed precision: bf16 (CPU or CUDA) or fp16 (CUDA, with loss scaling)")
    p.add_argument("--clip-grad", type=positive_float, default=TrainConfig.clip_grad,
                   help="clip the gradient norm to this value")
    p.add_argument("--tau", type=_tau, default=TrainConfig.tau)
    p.add_argument("--channels", type=int_list(1), default=TrainConfig.channels, help="csnn conv channels, e.g. 32,64")
    p.add_argument("--hidden", type=int_list(1), default=TrainConfig.hidden, help="mlp hidden widths, e.g. 256")
    p.add_argument("--norm", default=TrainConfig.norm, choices=NORMS,
                   help="csnn: bn (default), ws (OTTT's default), none")
    p.add_argument("--train-limit", type=positive_int, default=TrainConfig.train_limit,
                   help="use only the first N training samples")
    p.add_argument("--test-limit", type=positive_int, default=TrainConfig.test_limit,
                   help="use only the first N test samples")
    p.add_argument("--threads", type=positive_int, default=TrainConfig.threads, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def _tau(text: str) -> float:
    v = positive_float(text)
    if v <= 1:
        raise argparse.ArgumentTypeError(f"must be > 1 (the membrane time constant in steps), got {text}")
    return v


def _config(args) -> TrainConfig:
    return TrainConfig(dataset=args.dataset, model=args.model, neuron=args.neuron, method=args.method,
                       ottt_mode=args.ottt_mode, T=args.T, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, seed=args.seed,
                       data_dir=args.data_dir, out=args.out, backend=args.backend, encoding=args.encoding,
                       amp=args.amp, clip_grad=args.clip_grad, tau=args.tau, channels=args.channels, hidden=args.hidden, norm=args.norm,
                       train_limit=args.train_limit, test_limit=args.test_limit, threads=args.threads,
                       progress=False if args.no_progress else None)


def contradicting_flags(args, ckpt: dict) -> list[str]:
    """``--flag value (checkpoint value)`` for every flag given explicitly that differs from the checkpoint's
    run (flags that may change on resume, such as --epochs, do not count)."""
    from .trainer import _RESUMABLE_OVERRIDES

    stored, given = ckpt["train_config"], getattr(args, "_given", set())
    out = []
    for dest in sorted(given & set(TrainConfig.__dataclass_fields__) - set(_RESUMABLE_OVERRIDES)):
        if dest not in stored:
            continue
        value, before = getattr(args, dest), stored[dest]
        accepted = [before] + ([ckpt.get("dataset")] if dest == "dataset" else [])
        if not any(_same(value, b) for b in accepted):
            out.append(f"--{dest.replace('_', '-')} {_show(value)} (checkpoint {_show(before)})")
    return out


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _show(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def check_resume(args) -> None:
    """``--resume`` continues the checkpoint's run: its checkpoint must be complete, and flags given
    explicitly must agree with it (an error lists those that do not)."""
    from .checkpoint import RESUME_KEYS, load_checkpoint
    from .trainer import CHECKPOINT_NAME

    path = Path(args.out) / CHECKPOINT_NAME
    if not path.exists():
        return  # the trainer starts from scratch and says so
    differ = contradicting_flags(args, load_checkpoint(path, require=RESUME_KEYS))
    if differ:
        raise ValueError(f"--resume: these flags differ from the checkpoint's ({path}): {', '.join(differ)}; "
                         f"drop them or start a new run")


def train_command(args) -> dict:
    from .trainer import Trainer

    from . import distributed

    if args.resume:
        check_resume(args)
    elif not args.overwrite:
        refuse_to_overwrite(args.out, TRAIN_RESULTS, "pass --resume to continue it")
    with distributed.leaving_group_at_end():  # under torchrun the trainer joins the process group
        trainer = Trainer(_config(args), resume=args.resume)
        summary = trainer.fit()
    return summary if trainer.ctx.is_main else None  # only rank 0 prints and writes --json


def _is_demo_run(out: Path) -> bool:
    """Whether ``out`` holds the results of an earlier ``snn demo`` (which a new demo may replace)."""
    from .checkpoint import load_checkpoint
    from .trainer import CHECKPOINT_NAME

    try:
        cfg = load_checkpoint(out / CHECKPOINT_NAME, require=("train_config",))["train_config"]
    except (ValueError, FileNotFoundError):
        return False
    return all(_same(cfg.get(k), v) for k, v in DEMO_CONFIG.items() if k != "epochs")


def demo_command(args) -> dict:
    """Train the demo network, then plot a raster of its hidden spikes and its training curves."""
    import torch

    from .. import viz
    from ..functional import reset
    from ..models import spiking_layers
    from .trainer import Trainer

    out = Path(args.out)
    if not args.overwrite and not _is_demo_run(out):
        refuse_to_overwrite(out, DEMO_RESULTS)
    cfg = TrainConfig(**DEMO_CONFIG, out=str(out), threads=args.threads, progress=False if args.no_progress else None)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    trainer = Trainer(cfg)
    summary = trainer.fit()

    model = trainer.model.eval()
    spiking = list(spiking_layers(model).items())
    name, layer = spiking[-1]
    captured = {}
    handle = layer.register_forward_hook(lambda m, a, o: captured.setdefault("s", o.detach()))
    with torch.no_grad():
        reset(model)
        model(trainer.encode(trainer.test_data[0][0].unsqueeze(0)))
        reset(model)
    handle.remove()
    s = captured["s"][:, 0].reshape(cfg.T, -1)[:, :128]
    raster = viz.raster(s, out / "raster.png", title=f"layer {name}: spikes of 128 neurons for one test digit")
    curves = viz.curves({k: trainer.history[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")},
                        out / "curves.png", title="snn demo: csnn on digits")
    summary = {k: v for k, v in summary.items() if k != "history"}
    summary.update(raster_png=str(raster), curves_png=str(curves))
    atomic_write_json(out / "summary.json", summary)
    print(f"snn demo: test accuracy {summary['test_acc']:.4f} after {summary['epochs']} epochs "
          f"({summary['train_seconds']:.1f} s of training)")
    return summary


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a spiking network (BPTT, DSR or OTTT)",
                              description="Train a registered model (the mlp/csnn presets or the zoo) on a "
                                          "registered data set with snn.train.fit; checkpoints every epoch into "
                                          "--out. A new "
                                          "run refuses an --out that holds an earlier run: continue it with "
                                          "--resume or replace it with --overwrite.")
    _add_train_options(p)
    p.add_argument("--out", default="runs/train",
                   help="output directory (checkpoint.pt, history.json); one that holds an earlier run is refused "
                        "unless --resume or --overwrite")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue from <out>/checkpoint.pt exactly; flags other than --epochs, --data-dir, "
                            "--threads and --no-progress must match the checkpoint's run or be left out")
    again.add_argument("--overwrite", action="store_true", help="replace the run in --out with a new one")
    declare_output(p, "out", "dir")
    add_json_option(p)
    p.set_defaults(func=train_command)

    d = subparsers.add_parser("demo", help="train a small network on the embedded digits and plot it",
                              description="Trains a small csnn on scikit-learn's digits (about 30-60 s on 2 CPU "
                                          "cores), prints the test accuracy, writes raster.png, curves.png and "
                                          "summary.json into --out, replacing an earlier demo there (other runs "
                                          "are refused unless --overwrite).")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--epochs", type=positive_int, default=None, help=f"default {DEMO_CONFIG['epochs']}")
    d.add_argument("--threads", type=positive_int, default=None)
    d.add_argument("--no-progress", action="store_true")
    d.add_argument("--overwrite", action="store_true", help="replace whatever run --out holds")
    declare_output(d, "out", "dir")
    add_json_option(d)
    d.set_defaults(func=demo_command)
