"""``bids_taskenc --help`` and ``--version`` answer without importing torch (it took 4.5–19 s to import)."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "scipy", "nibabel", "bids", "matplotlib")


def _modules_after(code: str) -> dict:
    script = f"import json, sys\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_the_command_line_imports_no_heavy_library():
    loaded = _modules_after(
        "import bids_taskenc.cli.run, bids_taskenc.cli.parser; bids_taskenc.cli.parser.build_parser()"
    )
    assert not any(loaded.values()), loaded


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_torch(flag):
    code = (
        "from bids_taskenc.cli.run import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main([{flag!r}])\n    except SystemExit as e:\n        assert e.code == 0, e.code"
    )
    loaded = _modules_after(code)
    assert not loaded["torch"], loaded


def test_the_encoding_package_still_exports_its_names():
    """The package imports its modules on first use; every public name resolves (torch loads then)."""
    import bids_taskenc.encoding as enc

    for name in enc.__all__:
        assert getattr(enc, name) is not None
    from bids_taskenc.encoding.fit import DEFAULT_ALPHAS

    assert enc.DEFAULT_ALPHAS is DEFAULT_ALPHAS


def test_a_function_named_like_its_module_stays_the_function():
    """``noise_ceiling`` is a module and a function of the package; importing the module must not shadow it."""
    code = (
        "import bids_taskenc.encoding.noise_ceiling\n"
        "from bids_taskenc.encoding import noise_ceiling\n"
        "assert callable(noise_ceiling), noise_ceiling"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
