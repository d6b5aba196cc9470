"""Which packages the wheel holds. Found, never listed, so that a new module cannot be left out:
every package under vae_tools/, the folder pipelines/ installed as ``vaetools_pipelines`` (the
public index has a package named ``pipelines``, and two distributions may not share a top-level
name), and the YAML presets of configs/ as ``vae_tools.presets``. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

CLI_FOLDER, CLI_PACKAGE = "pipelines", "vaetools_pipelines"
PRESETS = {"vae_tools.presets": "configs", "vae_tools.presets.pipelines": "configs/pipelines"}

library = find_packages(include=["vae_tools", "vae_tools.*"])
cli = [CLI_PACKAGE + name[len(CLI_FOLDER):] for name in find_packages(include=[CLI_FOLDER, f"{CLI_FOLDER}.*"])]

setup(
    packages=[*library, *cli, *PRESETS],
    package_dir={CLI_PACKAGE: CLI_FOLDER, **PRESETS},
    package_data={name: ["*.yaml"] for name in PRESETS},
)
