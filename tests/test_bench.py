"""The packaged kernel benchmark (snn.bench.kernels) and its `snn bench kernels` command."""
import pytest


def test_bench_kernels_quick_run(tmp_path):
    from snn.bench.kernels import format_table, run
    res = run([2], [300], threads=1, json_path=str(tmp_path / "b.json"), png_path=str(tmp_path / "b.png"), repeat=1,
              device="cpu", include_peers=False)
    impls = {(r["impl"], r["mode"]) for r in res["rows"]}
    assert {("copy", "copy"), ("snn-cpp", "fwd"), ("snn-cpp", "fwd+bwd"), ("snn-torch", "fwd")} <= impls
    assert (tmp_path / "b.json").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0
    assert "snn-cpp" in format_table(res) and "T=2,N=300" in res["goals"]
    with pytest.raises(ValueError, match="positive"):
        run([0], [10], include_peers=False)


def test_bench_cli_registers_kernels():
    from snn.cli import build_parser
    args = build_parser().parse_args(["bench", "kernels", "--T", "4", "--N", "64", "--no-peers", "--json", "x.json"])
    assert args.T == [4] and args.N == [64] and args.no_peers and args.json == "x.json" and callable(args.func)

