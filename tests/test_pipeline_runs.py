"""`vaetools run`, `chain` and `demo`: one run folder, skipping, --force, resuming, --set, bad files."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import open_page
from click.testing import CliRunner
from conftest import invoke, make_images

TRAIN = {"epochs": 3, "batch_size": 16, "latent_dim": 4, "set": ["hidden_dim=32", "widths=[8, 16]"]}


run_cli = invoke


@pytest.fixture
def data(tmp_path):
    images, labels = make_images(n=80, size=12, seed=4)
    np.savez(tmp_path / "bars.npz", x=images, y=labels)
    return tmp_path / "bars.npz"


def write_pipeline(path, data, label_fraction=0.2, extra=""):
    path.write_text(f"""# a small pipeline
data: {data}
steps:
  - train: {json.dumps(TRAIN)}
  - embed
  - label-propagate: {{labeled: {label_fraction}, refine_rounds: 0, neighbors: 5}}
  - cluster: {{clusters: 2, reduce: none}}
{extra}""")
    return path


def statuses(output):
    return dict(re.findall(r"\[([\w-]+)\] (running|unchanged)", output))


def test_run_skips_unchanged_steps_force_reruns_and_set_overrides(tmp_path, data):
    pipeline = write_pipeline(tmp_path / "p.yaml", data)
    run = tmp_path / "runs" / "p"
    first = run_cli("run", pipeline, "--out", run, "--quiet")
    assert set(statuses(first.output).values()) == {"running"}
    assert "open " + str(run / "index.html") in first.output
    for name in ("model/model.safetensors", "embeddings.parquet", "labels/predictions.csv", "clusters/clusters.csv",
                 "index.html", "pipeline_state.json"):
        assert (run / name).exists(), name
    weights = (run / "model" / "model.safetensors").stat().st_mtime_ns

    second = run_cli("run", pipeline, "--out", run, "--quiet")
    assert set(statuses(second.output).values()) == {"unchanged"}
    assert (run / "model" / "model.safetensors").stat().st_mtime_ns == weights

    changed = run_cli("run", pipeline, "--out", run, "--quiet", "--set", "cluster.clusters=3")
    assert statuses(changed.output) == {"train": "unchanged", "embed": "unchanged", "label-propagate": "unchanged",
                                        "cluster": "running"}
    assert json.loads((run / "clusters" / "metrics.json").read_text())["n_clusters"] == 3

    forced = run_cli("run", pipeline, "--out", run, "--quiet", "--force", "--set", "cluster.clusters=3")
    assert set(statuses(forced.output).values()) == {"running"}
    assert (run / "model" / "model.safetensors").stat().st_mtime_ns != weights

    retrained = run_cli("run", pipeline, "--out", run, "--quiet", "--set", "train.epochs=2", "--set", "cluster.clusters=3")
    assert set(statuses(retrained.output).values()) == {"running"}  # a changed step reruns everything after it
    state = json.loads((run / "pipeline_state.json").read_text())
    assert state["steps"]["train"]["options"]["epochs"] == 2  # typed, as the pipeline file gives it
    assert all(state["steps"][s]["status"] == "done" for s in state["order"])


def test_a_failed_step_keeps_earlier_outputs_and_a_rerun_continues_there(tmp_path, data):
    pipeline = write_pipeline(tmp_path / "p.yaml", data, label_fraction=0.001)
    run = tmp_path / "run"
    failed = run_cli("run", pipeline, "--out", run, "--quiet", ok=False)
    assert failed.exit_code == 1
    assert "step label-propagate failed" in failed.output and "got no labelled sample" in failed.output
    assert "Traceback" not in failed.output
    assert (run / "model" / "model.safetensors").exists() and (run / "embeddings.parquet").exists()
    assert not (run / "clusters").exists()
    state = json.loads((run / "pipeline_state.json").read_text())
    assert state["steps"]["label-propagate"]["status"] == "failed"

    resumed = run_cli("run", pipeline, "--out", run, "--quiet", "--set", "label-propagate.labeled=0.2")
    assert statuses(resumed.output) == {"train": "unchanged", "embed": "unchanged", "label-propagate": "running",
                                        "cluster": "running"}


@pytest.mark.parametrize("body, message", [
    ("data: {data}\nsteps:\n  - train\n  - embedd\n", "p.yaml:4: unknown step 'embedd'"),
    ("data: {data}\nsteps:\n  - train\n  - cluster: {{colour: red}}\n", "p.yaml:4: 'colour' is not an option of cluster"),
    ("data: {data}\nsteps:\n  - train\n  - cluster: {{method: kmean}}\n", "p.yaml:4: step cluster: Invalid value for '--method'"),
    ("data: {data}\nsteps:\n  - train: {{epochs: -3}}\n", "p.yaml:3: step train: Invalid value for '--epochs'"),
    ("data: {data}\nsteps:\n  - embed: {{out: x.csv}}\n", "p.yaml:3: 'out' is set by the run folder layout"),
    ("data: {data}\nsteps: [train\n", "p.yaml:3: not valid YAML"),
    ("data: {data}\n", "expected a mapping with 'data' and a non-empty list 'steps'"),
    ("data: {data}\ncolour: 3\nsteps: [train]\n", "unknown key(s) colour"),
    ("data: {data}\nsteps: [cluster]\n", "step cluster needs the output of embed"),
])
def test_malformed_pipeline_files_are_clear_errors(tmp_path, data, body, message):
    (tmp_path / "p.yaml").write_text(body.format(data=data))
    result = run_cli("run", tmp_path / "p.yaml", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 1, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "model").exists()


def test_bad_set_and_missing_file(tmp_path, data):
    pipeline = write_pipeline(tmp_path / "p.yaml", data)
    assert "the pipeline has no step 'umap'" in run_cli("run", pipeline, "--set", "umap.neighbors=3", ok=False).output
    assert "use KEY=VALUE" in run_cli("run", pipeline, "--set", "epochs", ok=False).output
    assert "no such pipeline file or ready-made pipeline" in run_cli("run", tmp_path / "none.yaml", ok=False).output


def test_chain_from_the_command_line(tmp_path, data):
    run = tmp_path / "chained"
    result = run_cli("chain", "--data", data, "--out", run, "--quiet", "train", "--epochs", "2", "--latent-dim", "4",
                     "--set", "hidden_dim=32", "--set", "widths=[8, 16]", "embed",
                     "label-propagate", "--labeled", "0.25", "--refine-rounds", "0", "--neighbors", "5",
                     "cluster", "--clusters", "2", "--reduce", "none")
    assert list(statuses(result.output)) == ["train", "embed", "label-propagate", "cluster"]
    assert (run / "labels" / "metrics.json").exists() and (run / "index.html").exists()
    again = run_cli("chain", "--data", data, "--out", run, "--quiet", "train", "--epochs", "2", "--latent-dim", "4",
                    "--set", "hidden_dim=32", "--set", "widths=[8, 16]", "embed")
    assert set(statuses(again.output).values()) == {"unchanged"}
    assert "expected a step name first" in run_cli("chain", "--data", data, "--epochs", "2", ok=False).output


def test_demo_runs_every_step_and_its_index_opens_with_every_link_present(tmp_path):
    result = run_cli("demo", "--out", tmp_path / "demo", "--quiet")
    index = Path(result.output.strip().splitlines()[-1].split("open ", 1)[1])
    assert index == tmp_path / "demo" / "index.html"
    state = json.loads((tmp_path / "demo" / "pipeline_state.json").read_text())
    assert state["order"] == ["train", "embed", "label-propagate", "cluster", "umap", "anomalies", "denoise", "sample",
                              "reconstruct", "interpolate", "traverse"]
    frame = pd.read_parquet(tmp_path / "demo" / "embeddings.parquet")
    assert len(frame) == 1797 and "neg_elbo" in frame
    again = run_cli("demo", "--out", tmp_path / "demo", "--quiet")
    assert set(statuses(again.output).values()) == {"unchanged"}
    text = index.read_text()
    links = [link for link in re.findall(r'href="([^"]+)"', text) if not link.startswith("#")]
    assert len(links) > 20
    assert all((index.parent / link).exists() for link in links), [l for l in links if not (index.parent / l).exists()]
    for figure in ("label accuracy on the unlabelled", "anomalies", "denoising PSNR", "clustering",
                   "New images drawn by the model", "Interpolation between pairs of images"):
        assert figure in text
    # Each figure says what it measures and against what; nothing names this machine's folders.
    for sentence in ("always guessing the commonest label would get", "a plain method on the same labels",
                     "NMI", "(0: unrelated to the labels, 1: the labels exactly)", "synthetic outliers",
                     "every 3 dB halves the squared error", "best validation loss", "Confusion matrix",
                     "Maps averaged: 5 (auto"):
        assert sentence in text, sentence
    assert str(tmp_path) not in text and "/work/" not in text
    for section in ("train", "label-propagate", "cluster", "umap", "anomalies", "denoise", "sample", "interpolate"):
        assert f'<section id="{section}">' in text and f'href="#{section}"' in text
    assert text.count("<figure>") >= 10
    planted = json.loads((tmp_path / "demo" / "anomalies" / "metrics.json").read_text())["planted"]
    assert planted["n"] == 20 and planted["flagged"] >= 15 and planted["auroc_against_the_data"] > 0.95
    screenshot = tmp_path / "index.png"
    images, errors, failed, _, title = open_page(index, screenshot=screenshot)
    layout = open_page.layout
    assert layout["scroll"] <= layout["viewport"] and layout["widest"] <= layout["viewport"] + 1, layout
    printed = open_page.print_layout
    assert printed["widest"] <= printed["viewport"] + 1, printed  # it prints on A4 without cut-off figures
    from PIL import Image

    assert Image.open(screenshot).size[0] == 1280
    assert title == "vaetools run: demo"
    assert images and all(complete and width > 0 for _, complete, width in images)
    assert errors == [] and failed == []


def test_a_new_step_is_one_declaration_and_its_registration(tmp_path, data):
    """What docs/architecture.md promises: a Step (parameters, function, output, section) plus
    register_step gives `vaetools STEP`, and `vaetools run` runs it, skips it when unchanged and
    shows its section on the index page."""
    from dataclasses import dataclass

    from vae_tools.atomic import write_json
    from vae_tools.data import load_dataset
    from vaetools_pipelines import common_options as common
    from vaetools_pipelines.commands import command_for
    from vaetools_pipelines.sections import Section
    from vaetools_pipelines.step_api import Step, option
    from vaetools_pipelines.steps import get_step, register_step, unregister_step

    @dataclass(frozen=True)
    class CountParameters:
        data: str = common.data()
        out: str = common.out_folder()
        at_least: int = option(0, type=int, help="How many images are enough.")
        quiet: bool = common.quiet()

    def count_images(p: CountParameters) -> dict:
        n = len(load_dataset(p.data))
        Path(p.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(p.out) / "count.json", {"n": n, "enough": n >= p.at_least})
        return {"n": n}

    step = register_step(Step(
        name="count-images", parameters=CountParameters, run=count_images, output="counts",
        supplies=lambda run, source: {"data": source},
        report=lambda summary, p: [f"{summary['n']} images"],
        section=lambda run: Section("How many images", [f"{json.loads((run / 'counts' / 'count.json').read_text())['n']} images"])))
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_step(get_step("count-images"))
        result = CliRunner().invoke(command_for(step), ["--data", str(data), "--out", str(tmp_path / "c"), "--at-least", "90"])
        assert result.exit_code == 0 and result.output == "80 images\n"
        assert json.loads((tmp_path / "c" / "count.json").read_text()) == {"n": 80, "enough": False}
        pipeline = tmp_path / "p.yaml"
        pipeline.write_text(f"data: {data}\nsteps:\n  - count-images: {{at_least: 50}}\n")
        run = tmp_path / "run"
        run_cli("run", pipeline, "--out", run, "--quiet")
        assert json.loads((run / "counts" / "count.json").read_text()) == {"n": 80, "enough": True}
        page = (run / "index.html").read_text()
        assert '<section id="count-images"><h2>How many images</h2><p>80 images</p>' in page
        assert "unchanged" in run_cli("run", pipeline, "--out", run, "--quiet").output
    finally:
        unregister_step("count-images")
    assert "unknown step 'count-images'" in run_cli("run", pipeline, "--out", run, ok=False).output


def test_the_runner_gives_a_step_typed_values_not_a_command_line(tmp_path):
    """A pipeline file's options reach the step as the values Click would make of them; a chain's
    typed options are parsed by the step's own parser; a repeatable option gathers both the run
    folder's values and the user's."""
    from vae_tools.errors import ConfigError
    from vaetools_pipelines.cli import step_commands
    from vaetools_pipelines.runner import StepSpec, step_context

    commands = step_commands()
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "predictions.csv").write_text("id,predicted_label\n")
    ctx = step_context(StepSpec("cluster", {"clusters": "3", "reduce": "none"}), commands["cluster"], tmp_path,
                       "digits", "p.yaml:2")
    assert ctx.params["n_clusters"] == 3 and ctx.params["reduce"] == "none"
    assert ctx.params["embeddings"] == str(tmp_path / "embeddings.parquet")
    ctx = step_context(StepSpec("umap", args=["--colour-by", "neg_elbo", "--neighbors", "7"]), commands["umap"],
                       tmp_path, "digits", "chain", quiet=True)
    assert ctx.params["colour_by"] == ("predicted_label", "neg_elbo") and ctx.params["n_neighbors"] == 7
    assert ctx.params["quiet"] is True
    with pytest.raises(ConfigError, match="p.yaml:2: cluster takes one value for 'clusters', got a list"):
        step_context(StepSpec("cluster", {"clusters": [3, 4]}), commands["cluster"], tmp_path, "digits", "p.yaml:2")
    with pytest.raises(ConfigError, match="p.yaml:2: step cluster: Invalid value for '--clusters'"):
        step_context(StepSpec("cluster", {"clusters": "many"}), commands["cluster"], tmp_path, "digits", "p.yaml:2")


TOY_STEP = '''
"""A step from outside vaetools: writes how many images the data holds."""
import json
from dataclasses import dataclass
from pathlib import Path

from vaetools_pipelines import common_options as common
from vaetools_pipelines.sections import Section
from vaetools_pipelines.step_api import Step, option


@dataclass(frozen=True)
class CountParameters:
    data: str = common.data()
    out: str = common.out_folder()
    at_least: int = option(0, type=int, help="How many images are enough.")
    label: str = option("images", help="What to call them.")
    quiet: bool = common.quiet()


def count(p):
    from vae_tools.data import load_dataset

    n = len(load_dataset(p.data))
    Path(p.out).mkdir(parents=True, exist_ok=True)
    (Path(p.out) / "count.json").write_text(json.dumps({"n": n, "enough": n >= p.at_least}))
    return {"n": n}


def section(run):
    n = json.loads((run / "counts" / "count.json").read_text())["n"]
    return Section("How many images", [f"{n} images counted"])


STEP = Step(name="count-images", parameters=CountParameters, run=count, output="counts",
            supplies=lambda run, data: {"data": data},
            report=lambda summary, p: [f"{summary['n']} {p.label}"], section=section,
            help="Count the images of SOURCE.")
'''


def test_a_step_from_another_installed_distribution_runs_from_a_shell(tmp_path, data):
    """The entry-point group vaetools.steps: a step installed by another distribution is a `vaetools`
    sub-command and a pipeline step, with its own index section, in a fresh process."""
    import os
    import subprocess
    import sys

    project = tmp_path / "toy"
    (project / "toy_count_step").mkdir(parents=True)
    (project / "toy_count_step" / "__init__.py").write_text(TOY_STEP)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "toy-count-step"\nversion = "0.1"\n'
        '[project.entry-points."vaetools.steps"]\ncount-images = "toy_count_step:STEP"\n')
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(project)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def vaetools(*args):
        return subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=tmp_path)

    assert "--at-least" in vaetools("count-images", "--help").stdout
    direct = vaetools("count-images", "--data", data, "--out", tmp_path / "c", "--label", "pictures")
    assert direct.returncode == 0 and direct.stdout == "80 pictures\n", direct.stderr
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"data: {data}\nsteps:\n  - count-images: {{at_least: 50}}\n")
    ran = vaetools("run", pipeline, "--out", tmp_path / "run", "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "run" / "counts" / "count.json").read_text()) == {"n": 80, "enough": True}
    page = (tmp_path / "run" / "index.html").read_text()
    assert '<section id="count-images"><h2>How many images</h2><p>80 images counted</p>' in page
    without = subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", "run", str(pipeline), "--out",
                              str(tmp_path / "run2")], capture_output=True, text=True, cwd=tmp_path)
    assert without.returncode != 0 and "unknown step 'count-images'" in without.stderr
