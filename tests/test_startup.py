"""The CLI answers --help without importing the heavy libraries, and the library's layers import downwards."""

import subprocess
import sys
from pathlib import Path

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


def test_models_and_generation_build_on_nothing_above_them():
    """The model layer (models/) and the generative side build on inference primitives from below,
    never on the steps that use a model (embedding, scoring, the latent tools, training)."""
    import ast

    import vae_tools

    root = Path(vae_tools.__file__).parent
    above = ("vae_tools.embedding", "vae_tools.anomaly", "vae_tools.latent", "vae_tools.semi_supervised",
             "vae_tools.training", "vae_tools.sklearn_api", "vae_tools.denoising")
    climbing = []
    for layer, forbidden in (("models", above), ("generation", above)):
        for path in (root / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                    [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
                climbing += [f"{layer}/{path.name}: {name}" for name in names if name.startswith(forbidden)]
    assert climbing == []
