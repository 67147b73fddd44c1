"""Benchmarks that ship with the package.

- :mod:`snn.bench.kernels`: multi-step LIF throughput of snn's backends against the peers and the copy roofline
  (:func:`snn.bench.kernels.run`, used by ``snn bench kernels`` and ``benchmarks/lif_throughput.py``).
- :mod:`snn.bench.cli`: the ``snn bench`` command.
"""
