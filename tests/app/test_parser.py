"""Command-line surface: no abbreviations, help text that reads right."""

import pytest

from bids_taskenc.cli.parser import build_parser, parse_args
from bids_taskenc.errors import UsageError


def test_abbreviated_options_are_refused():
    """argparse's prefix matching read ``--mem 8000`` as ``--mem-gb 8000`` (8 TB)."""
    with pytest.raises(UsageError, match="unrecognized arguments: --mem-g 8"):
        build_parser().parse_args(["bids", "out", "participant", "--mem-g", "8"])


def test_help_gives_defaults_but_not_for_switches():
    text = build_parser().format_help()
    flat = " ".join(text.split())
    assert "--no-standardize only centre the features (default: z-score them with training statistics)" in flat
    assert "(default: True)" not in flat and "(default: False)" not in flat
    assert "where featurization and ridge run" in flat
    assert "(default: 0.15)" in flat  # valued options keep their default


def test_repeatable_option_in_config_and_command_line_wins(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('variance_partitioning = [["group:3D", "group:2D"], ["a", "b", "c"]]\n')
    base = [str(tmp_path), str(tmp_path / "o"), "participant", "--config", str(config)]
    assert parse_args(base).variance_partitioning == [["group:3D", "group:2D"], ["a", "b", "c"]]
    # the command line replaces the config's uses instead of adding to them
    cli = parse_args([*base, "--variance-partitioning", "x", "y"])
    assert cli.variance_partitioning == [["x", "y"]]
    config.write_text('variance_partitioning = ["group:3D", "group:2D"]\n')
    with pytest.raises(UsageError, match="a list of lists"):
        parse_args(base)


@pytest.mark.parametrize(
    "value, mb",
    [
        ("16000", 16000.0),
        ("16GB", 16000.0),
        ("16G", 16000.0),
        ("16g", 16000.0),
        ("500MB", 500.0),
        ("500M", 500.0),
        ("1.5G", 1500.0),
        ("1TB", 1e6),
    ],
)
def test_mem_is_megabytes_with_optional_unit(value, mb):
    """fMRIPrep's --mem: a plain number is MB; the fit gets the same budget in GB."""
    args = parse_args(["bids", "out", "participant", "--mem", value])
    assert args.mem == pytest.approx(mb)
    assert args.mem_gb == pytest.approx(mb / 1000)


@pytest.mark.parametrize("value", ["0", "-5", "16XB", "GB", "", "nan"])
def test_mem_rejects_bad_values_with_usage_error(value):
    with pytest.raises(UsageError, match="--mem"):
        parse_args(["bids", "out", "participant", "--mem", value])


def test_mem_gb_is_a_deprecated_alias_and_not_both():
    assert parse_args(["bids", "out", "participant", "--mem-gb", "8"]).mem == pytest.approx(8000)
    with pytest.raises(UsageError, match="--mem only"):
        parse_args(["bids", "out", "participant", "--mem-gb", "8", "--mem", "8G"])


def test_mem_from_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('mem = "16GB"\nnprocs = 3\nomp_nthreads = 2\n')
    args = parse_args(["bids", "out", "participant", "--config", str(cfg)])
    assert (args.mem, args.nprocs, args.omp_nthreads) == (16000.0, 3, 2)
    cfg.write_text('mem = "lots"\n')
    with pytest.raises(UsageError, match="mem"):
        parse_args(["bids", "out", "participant", "--config", str(cfg)])


@pytest.mark.parametrize("flag", ["--nprocs", "--omp-nthreads"])
def test_thread_counts_must_be_positive(flag):
    with pytest.raises(UsageError, match=flag):
        parse_args(["bids", "out", "participant", flag, "0"])


def test_omp_nthreads_sets_torch_and_blas_threads(monkeypatch):
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from bids_taskenc.cli import run

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "9")  # monkeypatch restores them
    before = torch.get_num_threads()
    # the suite runs with one thread per library (tests/conftest.py): start from two, or the checks could not fail
    with threadpool_limits(limits=2):  # restores the BLAS pools afterwards
        torch.set_num_threads(2)
        try:
            args = parse_args(["bids", "out", "participant", "--omp-nthreads", "1", "--nprocs", "3", "--mem", "2G"])
            resources = run.apply_resources(args)
            assert torch.get_num_threads() == 1
            pools = threadpool_info()
            assert pools and all(p["num_threads"] == 1 for p in pools)
            assert resources == {"NProcs": 3, "OMPNThreads": 1, "TorchThreads": 1, "MemMB": 2000.0}
            import os

            assert os.environ["OMP_NUM_THREADS"] == "1"
        finally:
            torch.set_num_threads(before)
            from bids_taskenc.workflow import resources as workflow_resources

            workflow_resources._blas_limits = None


def test_nprocs_defaults_to_the_cpus_available():
    from bids_taskenc.cli import run

    args = parse_args(["bids", "out", "participant"])
    assert run.apply_resources(args)["NProcs"] == run.available_cpus() >= 1
    assert args.nprocs == run.available_cpus()


def test_help_never_says_default_none():
    """Options without a default said "(default: None)" after their own explanation of what happens."""
    text = build_parser().format_help()
    assert "default: None" not in text
    assert "--mem MB, --mem-mb MB" in text and "16GB" in text
