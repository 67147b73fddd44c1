"""One registry of data sets: ``get_dataset(name, root=None, split='train', **options)``.

Every entry returns a :class:`snn.data.datasets.LabeledDataset` (``num_classes``, ``input_shape``, ``sequence``,
``classes``). Entries state their splits, the options they take and where the files come from; an unknown
name, split or option is an error that lists what is accepted, raised before any file is read.
:func:`register` adds a user's own set under a new name.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

__all__ = ["DatasetEntry", "register", "get_dataset", "available", "entry"]


@dataclass(frozen=True)
class DatasetEntry:
    """A registered data set: ``build(root, split, **options)`` returns the data set; ``source`` says where
    its files come from (or that it needs none)."""
    name: str
    build: Callable
    splits: tuple
    modality: str
    description: str
    source: str
    extra_options: tuple = ()

    def options(self) -> tuple:
        """The keyword options ``build`` takes besides ``root`` and ``split`` (its named parameters, plus
        ``extra_options`` that it passes on through ``**kwargs``)."""
        params = inspect.signature(self.build).parameters.values()
        named = tuple(p.name for p in params if p.name not in ("root", "split") and p.kind not in
                      (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL))
        return named + tuple(o for o in self.extra_options if o not in named)


_REGISTRY: dict[str, DatasetEntry] = {}


def register(name: str, build: Callable, *, splits=("train", "test"), modality: str, description: str,
             source: str = "no files needed", extra_options=(), overwrite: bool = False) -> DatasetEntry:
    """Register ``build(root, split, **options)`` under ``name`` (an error if taken, unless ``overwrite``);
    ``extra_options`` names the options ``build`` accepts through ``**kwargs``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register: name must be a non-empty string, got {name!r}")
    if not callable(build):
        raise TypeError(f"register: build must be callable, got {type(build).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"register: a data set named {name!r} is already registered (pass overwrite=True to "
                         f"replace it)")
    _REGISTRY[name] = DatasetEntry(name, build, tuple(splits), modality, description, source, tuple(extra_options))
    return _REGISTRY[name]


def available() -> tuple:
    """The registered data set names."""
    return tuple(_REGISTRY)


def entry(name: str) -> DatasetEntry:
    """The registry entry of ``name``; an unknown name is an error listing the registered ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown data set {name!r}; registered: {', '.join(_REGISTRY)} "
                         f"(snn.data.register adds your own)")
    return _REGISTRY[name]


def get_dataset(name: str, root=None, split: str = "train", **options):
    """The data set ``name``'s ``split``, read from ``root`` (a directory in the layout of the original
    download; ``None``: the entry's default places, see its ``source``). ``options`` are the entry's own
    (frame conversion, cache, augmentations, subset size...): ``entry(name).options()`` lists them."""
    e = entry(name)
    if split not in e.splits:
        raise ValueError(f"{name}: split must be one of {e.splits}, got {split!r}")
    accepted = e.options()
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise TypeError(f"{name}: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(accepted) or 'none'}")
    return e.build(root=root, split=split, **options)
