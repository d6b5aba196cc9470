"""A command writes and removes only its own files, inside the --out it was given, whatever --out
holds already: links to the inputs or to other folders of the user's, the user's own files named
like every output (or like the numbered sets and the parts of a table), tables other tools wrote."""

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import invoke, make_images, one_error_line, snapshot, tiny_training
from vae_tools.written import RECORD_FILE

FAST = tiny_training(1)


# Each command with its --out: a folder, or a file (or table folder) inside the folder given.
COMMANDS = {
    "denoise": lambda w, o: ["denoise", "--model", w / "run", "--data", w / "images", "--out", o, "--quiet"],
    "sample": lambda w, o: ["sample", "--model", w / "run", "--out", o, "--n", "3"],
    "interpolate": lambda w, o: ["interpolate", "--model", w / "run", "--data", w / "bars.npz", "--out", o,
                                 "--pairs", "2", "--steps", "3"],
    "reconstruct": lambda w, o: ["reconstruct", "--model", w / "run", "--data", w / "bars.npz", "--out", o, "--n", "4"],
    "cluster": lambda w, o: ["cluster", "--embeddings", w / "latents.parquet", "--out", o, "--clusters", "2",
                             "--features", "latents", "--reduce", "none"],
    "label-propagate": lambda w, o: ["label-propagate", "--embeddings", w / "latents.parquet", "--labelled", "0.5",
                                     "--out", o, "--features", "latents", "--maps", "1", "--quiet"],
    "embed": lambda w, o: ["embed", "--model", w / "run", "--data", w / "bars.npz", "--out", o / "mine.csv", "--quiet"],
    "embed-parts": lambda w, o: ["embed", "--model", w / "run", "--data", w / "bars.npz", "--out", o / "t.parquet",
                                 "--partitioned", "--quiet"],
    "train": lambda w, o: ["train", "--data", w / "bars.npz", "--out", o, *FAST],
}
# Files the user had before any vaetools ran, named like those that vaetools once removed by a pattern.
LOOK_ALIKES = {"pair_of_shoes.png": b"shoes", "images/sample_holiday.png": b"holiday", "sample_beach.png": b"beach",
               "t.parquet/part-00003.parquet": b"mine", "images/x_00000.png": b"x"}
KINDS = ("links-to-inputs", "link-elsewhere", "namesakes", "look-alikes", "spark-table")


@pytest.fixture(scope="module")
def written(world, tmp_path_factory):
    """The files each command writes into a fresh --out, found by running it once."""
    names = {}
    for command, words in COMMANDS.items():
        out = tmp_path_factory.mktemp(f"fresh-{command}")
        invoke(*words(world, out))
        names[command] = sorted(name for name in snapshot(out) if not name.endswith(RECORD_FILE))
    return names


def prepare(kind: str, out: Path, elsewhere: Path, world: Path, names: list) -> None:
    """Fill --out (and a folder of the user's elsewhere) as ``kind`` says, before the command runs."""
    out.mkdir(parents=True, exist_ok=True)
    elsewhere.mkdir(parents=True, exist_ok=True)
    (elsewhere / "sample_beach.png").write_bytes(b"beach")
    if kind == "links-to-inputs":  # every folder the command writes into, a link to something it reads
        for folder in sorted({Path(n).parts[0] for n in names if len(Path(n).parts) > 1}) or ["images"]:
            (out / folder).symlink_to(world / "images", target_is_directory=True)
        (out / "data").symlink_to(world / "bars.npz")
    elif kind == "link-elsewhere":
        for folder in sorted({Path(n).parts[0] for n in names if len(Path(n).parts) > 1}) or ["images"]:
            (out / folder).symlink_to(elsewhere, target_is_directory=True)
    elif kind == "namesakes":
        for name in names:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(b"the user's own " + name.encode())
    elif kind == "look-alikes":
        for name, data in LOOK_ALIKES.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
    elif kind == "spark-table":  # a table another tool wrote, where the command writes a table or parts
        table = out / "t.parquet"
        table.mkdir()
        pd.DataFrame({"id": ["s1", "s2"], "v": [1.0, 2.0]}).to_parquet(table / "part-00000-1a2b.snappy.parquet")
        (table / "_SUCCESS").write_bytes(b"")
        (table / "part-00000.parquet").write_bytes(b"spark's own")


@settings(max_examples=36, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(COMMANDS)), kind=st.sampled_from(KINDS), nested=st.booleans())
def test_only_files_the_command_wrote_change_whatever_out_held(world, written, tmp_path_factory, command, kind,
                                                                nested):
    """Every file the user had (inputs, files in --out, folders a link in --out leads to) stays as
    it was, byte for byte; a refusal is one Error line; and a second run of the command is not
    refused by what the first one wrote."""
    home = tmp_path_factory.mktemp("user")
    out, elsewhere = home / ("deep/er" if nested else "out"), home / "elsewhere"
    prepare(kind, out, elsewhere, world, written[command])
    users = snapshot(home)
    inputs = snapshot(world)
    words = COMMANDS[command](world, out)
    result = invoke(*words, ok=False)
    assert "Traceback" not in result.output, result.output
    if result.exit_code != 0:
        one_error_line(result)
    after = snapshot(home)
    assert {k: v for k, v in after.items() if k in users} == users, f"{command} with {kind}: a user's file changed"
    now = snapshot(world)
    assert {k: v for k, v in now.items() if k in inputs} == inputs, f"{command} with {kind}: an input changed"
    target = Path(words[words.index("--out") + 1])
    for name in set(now) - set(inputs):  # new files among the inputs: only where --out itself (a link) leads
        assert target.resolve() in (world / name).parents, f"{command} with {kind}: wrote {name}"
    if kind == "namesakes" or (kind == "links-to-inputs" and command == "denoise"):  # it writes images/
        assert result.exit_code != 0, f"{command} with {kind} was not refused: {result.output}"
    if result.exit_code == 0 and command != "train":  # (a second train into a run folder is refused by design)
        again = invoke(*COMMANDS[command](world, out), ok=False)
        assert again.exit_code == 0, again.output
        assert {k: v for k, v in snapshot(home).items() if k in users} == users


def test_a_link_inside_out_to_the_images_is_refused_before_any_work(world, tmp_path):
    (tmp_path / "dn").mkdir()
    (tmp_path / "dn" / "images").symlink_to(world / "images", target_is_directory=True)
    before = snapshot(world / "images")
    line = one_error_line(invoke("denoise", "--model", world / "run", "--data", world / "images",
                                 "--out", tmp_path / "dn", "--quiet", ok=False))
    assert "dn/images is a link" in line and "--data" in line
    assert snapshot(world / "images") == before


def test_a_link_inside_out_to_another_folder_of_the_users_is_not_written_through(world, tmp_path):
    holiday = tmp_path / "holiday"
    holiday.mkdir()
    (holiday / "sample_beach.png").write_bytes(b"beach")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "images").symlink_to(holiday, target_is_directory=True)
    line = one_error_line(invoke("sample", "--model", world / "run", "--out", tmp_path / "s", "--n", "3", ok=False))
    assert "s/images: a link to" in line and "outside" in line
    assert sorted(p.name for p in holiday.iterdir()) == ["sample_beach.png"]
    assert not [p for p in (tmp_path / "s").iterdir() if p.name != "images"]  # nothing moved in


def test_out_inside_the_reference_folder_is_refused(world, tmp_path):
    reference = tmp_path / "ref"
    (reference / "class0").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(make_images(n=4, size=12)[0][i]).save(reference / "class0" / f"{i}.png")
    before = snapshot(reference)
    line = one_error_line(invoke("denoise", "--model", world / "run", "--data", world / "images", "--reference",
                                 reference, "--out", reference / "class0" / "den", "--quiet", ok=False))
    assert "lies inside --reference" in line
    assert snapshot(reference) == before


def test_numbered_sets_remove_only_their_own_earlier_files(world, tmp_path):
    out = tmp_path / "s"
    (out / "images").mkdir(parents=True)
    (out / "images" / "sample_holiday.png").write_bytes(b"holiday")
    invoke("sample", "--model", world / "run", "--out", out, "--n", "6")
    invoke("sample", "--model", world / "run", "--out", out, "--n", "2")
    assert sorted(p.name for p in (out / "images").iterdir()) == ["sample_00000.png", "sample_00001.png",
                                                                  "sample_holiday.png"]
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "pair_of_shoes.png").write_bytes(b"shoes")
    invoke("interpolate", "--model", world / "run", "--data", world / "bars.npz", "--out", photos, "--pairs", "3")
    invoke("interpolate", "--model", world / "run", "--data", world / "bars.npz", "--out", photos, "--pairs", "1")
    assert (photos / "pair_of_shoes.png").read_bytes() == b"shoes"
    assert sorted(p.name for p in photos.glob("pair_*.png")) == ["pair_00.png", "pair_of_shoes.png"]


def test_a_partitioned_table_keeps_other_files_and_drops_only_its_own_earlier_parts(world, tmp_path, monkeypatch):
    from vae_tools import distributed

    table = tmp_path / "t.parquet"
    table.mkdir()
    (table / "part-00003.parquet").write_bytes(b"the user's")
    monkeypatch.setattr(distributed, "world_size", lambda: 3)  # an earlier, wider run: parts 0-2 of ours
    from vae_tools.tables import finish_parts, start_parts, write_part

    start_parts(table, 3, "embed")
    for part in range(3):
        write_part(pd.DataFrame({"id": [f"{part}"], "mu_0": [1.0]}), table, part)
    finish_parts(table, 3, 3, "embed")
    monkeypatch.undo()
    invoke("embed", "--model", world / "run", "--data", world / "bars.npz", "--out", table, "--partitioned", "--quiet")
    assert sorted(p.name for p in table.iterdir() if p.name != RECORD_FILE) == [
        "_SUCCESS", "part-00000.parquet", "part-00003.parquet"]
    assert (table / "part-00003.parquet").read_bytes() == b"the user's"
    assert len(pd.read_parquet(table / "part-00000.parquet")) == 40


def test_a_spark_table_is_not_overwritten(world, tmp_path):
    table = tmp_path / "t.parquet"
    table.mkdir()
    pd.DataFrame({"id": ["a"]}).to_parquet(table / "part-00000-1a2b.snappy.parquet")
    (table / "_SUCCESS").write_bytes(b"")
    before = snapshot(table)
    line = one_error_line(invoke("embed", "--model", world / "run", "--data", world / "bars.npz", "--out", table,
                                 "--partitioned", "--quiet", ok=False))
    assert "_SUCCESS: exists and is not one vaetools wrote" in line
    assert snapshot(table) == before


@pytest.mark.parametrize("name, command", [
    ("mine.csv", lambda w, o: ["embed", "--model", w / "run", "--data", w / "bars.npz", "--out", o / "mine.csv"]),
    ("metrics.json", lambda w, o: ["label-propagate", "--embeddings", w / "latents.parquet", "--labelled", "0.5",
                                   "--out", o, "--features", "latents", "--maps", "1", "--quiet"]),
    ("config.json", lambda w, o: ["train", "--data", w / "bars.npz", "--out", o, *FAST]),
    ("history.csv", lambda w, o: ["train", "--data", w / "bars.npz", "--out", o, *FAST]),
])
def test_a_users_file_named_like_an_output_is_refused_and_kept(world, tmp_path, name, command):
    out = tmp_path / "o"
    out.mkdir()
    (out / name).write_text("the user's own")
    line = one_error_line(invoke(*command(world, out), ok=False))
    assert name in line and ("not one vaetools wrote" in line or "not a file of a vaetools run" in line)
    assert (out / name).read_text() == "the user's own"


def test_two_commands_sharing_a_folder_do_not_replace_each_others_files(world, tmp_path):
    out = tmp_path / "shared"
    invoke("cluster", "--embeddings", world / "latents.parquet", "--out", out, "--clusters", "2",
           "--features", "latents", "--reduce", "none")
    before = (out / "metrics.json").read_bytes()
    line = one_error_line(invoke(*COMMANDS["label-propagate"](world, out), ok=False))
    assert "written there by vaetools cluster" in line
    assert (out / "metrics.json").read_bytes() == before


def test_a_pipelines_own_step_folder_without_a_record_is_still_its_own(world, tmp_path):
    """Run folders written before vaetools kept records: the pipeline's state says whose they are."""
    from vaetools_pipelines.steps import get_step

    run = tmp_path / "run"
    words = ["chain", "--data", world / "bars.npz", "--out", run, "--quiet", "train", *FAST, "embed",
             "cluster", "--clusters", "2", "--features", "latents", "--reduce", "none"]
    invoke(*words)
    clusters = run / get_step("cluster").output
    (clusters / RECORD_FILE).unlink()
    before = (clusters / "clusters.csv").stat().st_mtime_ns
    invoke(*words[:5], "--force", *words[5:])
    assert (clusters / "clusters.csv").stat().st_mtime_ns != before
    assert "clusters.csv" in json.loads((clusters / RECORD_FILE).read_text())["files"]
