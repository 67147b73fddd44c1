"""``snn spide``: SPIDE's spike-based gradient against the IDE gradient as ``T_back`` grows, for a feedback
model at initialisation or trained (``--checkpoint``), on a batch of test images (:mod:`snn.spide.convergence`).

Importing this module registers the SPIDE models (:mod:`snn.spide.zoo`), so ``snn train --model spide-fc``
lists them.
"""
from __future__ import annotations

from . import zoo

__all__ = ["register"]

DATASETS = ("digits", "fashion-mnist")


def register(subparsers) -> None:
    from ..cli import add_json_option, declare_output, existing_file, int_list, positive_int, seed

    p = subparsers.add_parser("spide", help="SPIDE's spike-based gradient vs IDE's as T_back grows")
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="images the batch is drawn from (test split)")
    p.add_argument("--model", default="spide-fc", choices=zoo.MODEL_NAMES, help="a SPIDE feedback model")
    p.add_argument("--neuron", default="if", choices=("if", "lif"), help="forward neuron (lif: leak 0.95)")
    p.add_argument("--checkpoint", type=existing_file, default=None,
                   help="a feedback model trained by `snn train` (instead of a fresh --model)")
    p.add_argument("--T", type=positive_int, default=30, help="forward time steps")
    p.add_argument("--T-back", type=int_list(1), default=[10, 20, 50, 100, 250, 500],
                   help="backward time steps to compare, e.g. 10,100,250")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--seed", type=seed, default=0, help="initial weights of a fresh model")
    p.add_argument("--png", metavar="PATH", default=None, help="plot relative error and cosine vs T_back here")
    declare_output(p, "png", "file")
    add_json_option(p)
    p.set_defaults(func=_gradient)


def _model(args, in_shape):
    import torch

    from .. import models
    from .models import SpideClassifier

    if args.checkpoint is None:
        torch.manual_seed(args.seed)
        return models.get(args.model, num_classes=10, in_channels=in_shape[0], in_shape=list(in_shape),
                          neuron=args.neuron)
    from ..train import load_model

    model = load_model(args.checkpoint)
    if not isinstance(model, SpideClassifier):
        raise ValueError(f"--checkpoint {args.checkpoint} holds a {type(model).__name__}, not a SPIDE feedback "
                         f"model (train one with `snn train --model {'|'.join(zoo.MODEL_NAMES)}`)")
    return model


def _gradient(args) -> dict:
    from ..data import load
    from ..encoding import direct
    from .convergence import gradient_error, plot_gradient_error

    x, y = load(args.dataset, "test")
    x, y = x[:args.batch_size], y[:args.batch_size]
    model = _model(args, tuple(x.shape[1:]))
    result = gradient_error(model, direct(x, args.T), y, args.T_back)
    print(f"{'T_back':>8} {'cosine':>10} {'rel. error':>11} {'backward rate':>14}")
    for row in zip(result["T_back"], result["cosine"], result["relative_error"], result["backward_rate"]):
        print(f"{row[0]:>8} {row[1]:>10.5f} {row[2]:>11.4f} {row[3]:>14.4f}")
    name = args.checkpoint or args.model
    if args.png:
        plot_gradient_error({name: result}, args.png, title=f"SPIDE gradient vs IDE ({name}, T={args.T})")
    summary = {"model": name, "dataset": args.dataset, "T": args.T, "batch_size": len(y), **result}
    if args.png:
        summary["png"] = args.png
    return summary
