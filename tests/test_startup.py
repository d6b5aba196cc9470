"""The CLI answers --help without importing the heavy libraries."""

import subprocess
import sys

HEAVY = ("torch", "sklearn", "umap", "pandas", "matplotlib", "faiss")


def test_importing_the_cli_imports_no_heavy_library():
    code = ("import sys, vaetools_pipelines.cli; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_help_of_every_command_imports_no_heavy_library():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom vaetools_pipelines.cli import main\n"
            "for name in [None, *main.commands]:\n"
            "    args = [name, '--help'] if name else ['--help']\n"
            "    assert CliRunner().invoke(main, args).exit_code == 0, name\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
