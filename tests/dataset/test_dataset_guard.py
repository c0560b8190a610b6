"""The demo never writes into a user's dataset: the demo config pointed at a real LUMIERE-shaped tree
(an edit of `dataset.root` in config/config.yaml instead of using config/lumiere.yaml) stops before any
job runs, with one line naming the folder, and every file of the tree is left as it was."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from demo_run import snakemake, snapshot, tiny_config, write_config
from lumiere_fixture import write_lumiere_fixture

from ranoflow.dataset.guard import DatasetRootError, check_dataset_root, output_inside_dataset, output_keys

REPO = Path(__file__).resolve().parents[2]


def tree_state(root: Path) -> dict[str, str]:
    """{relative path: md5} of every file, plus the folders, of a tree."""
    state = {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    state.update({str(p.relative_to(root)): "dir" for p in root.rglob("*") if p.is_dir()})
    return state


def old_tree(root: Path) -> Path:
    """A LUMIERE-shaped tree with a user's notes file, every file older than a fresh clone's code."""
    write_lumiere_fixture(root, n_plain=2)
    (root / "Imaging" / "notes.txt").write_text("my notes\n")
    for path in root.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("where", ["outside", "under_results"])
def test_demo_config_pointed_at_a_real_tree_leaves_it_unchanged(tmp_path, where):
    (tmp_path / "run").mkdir()
    workdir = snapshot(tmp_path / "run")
    root = old_tree(tmp_path / "LUMIERE" if where == "outside" else workdir / "results" / "LUMIERE")
    before = tree_state(root)
    configfile = write_config(workdir, tiny_config(dataset={"root": str(root)}))
    run = snakemake(workdir, configfile, "--cores", "1")
    assert run.returncode != 0
    assert tree_state(root) == before
    lines = [line for line in (run.stdout + run.stderr).splitlines() if str(root) in line and "dataset.root" in line]
    assert lines, run.stderr[-3000:]
    assert "config/lumiere.yaml" in lines[0]


def test_generated_tree_is_accepted_and_results_inside_a_real_tree_are_refused(tmp_path):
    results = tmp_path / "results"
    demo = results / "demo" / "LUMIERE"
    check_dataset_root("synthetic", demo, results)  # not made yet
    (demo / "Imaging").mkdir(parents=True)
    with pytest.raises(DatasetRootError, match="not made by the synthetic generator"):
        check_dataset_root("synthetic", demo, results)
    (demo / ".ranoflow-synthetic").write_text("")
    check_dataset_root("synthetic", demo, results)
    check_dataset_root("lumiere", tmp_path / "LUMIERE", results)
    with pytest.raises(DatasetRootError, match="holds the results folder"):
        check_dataset_root("lumiere", tmp_path, results)


def test_every_output_path_of_the_config_inside_the_dataset_is_refused_naming_the_key(tmp_path):
    """Every output of the shipped config lies under results/ (refused inside the dataset above); a key the
    schema marks as an output path is refused the same way, naming the key."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert output_keys(schema) == []  # the tensor store replaced training.cache_dir: no configurable output path
    schema["properties"]["export"] = {"type": "object", "properties": {"dir": {"type": "string", "x-output-path": True}}}
    assert ("export", "dir") in output_keys(schema)
    root = tmp_path / "LUMIERE"
    inside = {"dataset": {"root": str(root)}, "export": {"dir": str(root / "models")}}
    line = output_inside_dataset(inside, schema)
    assert line.startswith(f"export.dir {root / 'models'} lies inside dataset.root") and "\n" not in line
    assert output_inside_dataset(inside | {"export": {"dir": str(tmp_path / "models")}}, schema) is None


@pytest.mark.slow
def test_the_removed_cache_dir_inside_a_lumiere_tree_stops_the_run_before_any_job(tmp_path):
    """An old config's training.cache_dir (pointing into the dataset) is refused as an unknown key before any
    job: nothing is written into the tree."""
    root = old_tree(tmp_path / "LUMIERE")
    before = tree_state(root)
    config = {"dataset": {"source": "lumiere", "root": str(root)},
              "training": {"cache": "disk", "cache_dir": str(root / "cache")}}
    configfile = write_config(tmp_path, config, "inside.yaml")
    run = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                          str(tmp_path), "--configfile", str(configfile), "--cores", "1", "--dry-run"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "unknown config key training.cache" in line]
    assert len(lines) == 1, run.stderr[-3000:]
    assert tree_state(root) == before
