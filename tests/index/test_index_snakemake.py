"""A real Snakemake run of the index stage (index, pairs, folds) on the quirky LUMIERE-shaped fixture."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from demo_run import planned_jobs
from lumiere_fixture import write_lumiere_fixture
from test_folds import assert_covers_every_pair_once, assert_no_patient_crosses

REPO = Path(__file__).resolve().parents[2]
TARGETS = ["results/index/studies.tsv", "results/index/excluded.tsv", "results/splits/folds.json"]


def snakemake(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(workdir / "config.yaml"), "--cores", "1", *args, *TARGETS]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


@pytest.mark.slow
def test_index_pairs_folds_on_a_lumiere_tree(tmp_path: Path) -> None:
    write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=6)
    config = {
        "dataset": {"source": "lumiere", "root": "LUMIERE"},
        "index": {"reference": "bratpro"},
        "folds": {"protocol": "patient", "k": 3, "seed": 1},
    }
    snakemake(tmp_path, config)
    results = tmp_path / "results"

    studies, pairs, excluded = (read(results / "index" / f"{name}.tsv") for name in ("studies", "pairs", "excluded"))
    assert len(studies) == 18 + 6 * 6
    assert "Patient-001_week-010_vs_week-000-2" in set(pairs["id"])  # bratpro reference
    assert len(pairs) + len(excluded) == len(studies) + 2  # + the two rating rows without folder
    assert set(excluded["reason"]) >= {
        "rating Pre-Op",
        "rating None",
        "no rating row",
        "no study folder for rating row",
    }

    folds = json.loads((results / "splits" / "folds.json").read_text())
    assert (folds["protocol"], folds["leaky"], folds["k"], len(folds["folds"])) == ("patient", False, 3, 3)
    assert_no_patient_crosses(folds, pairs)
    assert_covers_every_pair_once(folds, pairs)

    index_log = (results / "logs" / "index" / "index.log").read_text()
    assert "unreadable modality file" in index_log and "duplicate rating row" in index_log
    assert "rating None" in (results / "logs" / "pairs" / "pairs.log").read_text()

    # A config edit reruns what it touches: the reference rule changes the pairs, the paper protocol the folds.
    config["index"]["reference"] = "previous"
    config["folds"]["protocol"] = "paper"
    snakemake(tmp_path, config)
    assert "Patient-001_week-010_vs_week-003" in set(read(results / "index" / "pairs.tsv")["id"])
    folds = json.loads((results / "splits" / "folds.json").read_text())
    assert folds["leaky"] is True and all(fold["val"] == fold["test"] for fold in folds["folds"])
    assert "LEAKY" in (results / "logs" / "folds" / "folds.log").read_text()


@pytest.mark.slow
def test_folds_on_the_demo_data(tmp_path: Path) -> None:
    """The embedded synthetic demo (a few patients) through index, pairs and folds: no patient crosses."""
    config = {
        "dataset": {"source": "synthetic", "root": "results/demo/LUMIERE", "synthetic": {"n_patients": 6}},
        "folds": {"protocol": "patient", "k": 3, "seed": 42},
    }
    snakemake(tmp_path, config)
    pairs = read(tmp_path / "results" / "index" / "pairs.tsv")
    excluded = read(tmp_path / "results" / "index" / "excluded.tsv")
    studies = read(tmp_path / "results" / "index" / "studies.tsv")
    assert pairs["patient"].nunique() == 6 and set(pairs["label"]) == {"CR", "PR", "SD", "PD"}
    folders = set(zip(studies["patient"], studies["study"]))
    assert folders <= set(zip(pairs["patient"], pairs["current"])) | set(zip(excluded["patient"], excluded["study"]))
    folds = json.loads((tmp_path / "results" / "splits" / "folds.json").read_text())
    assert_no_patient_crosses(folds, pairs)
    assert_covers_every_pair_once(folds, pairs)


def plan(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """`snakemake -n` of the whole workflow (every experiment) with workdir's config.yaml."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), "--dry-run", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def sparse_flair_config(root: Path) -> dict:
    """An index-stage config of a fixture tree where FLAIR is left in two studies only."""
    flair = sorted((root / "Imaging").rglob("FLAIR.nii.gz"))
    for path in flair[2:]:
        path.unlink()
    return {
        "dataset": {"source": "lumiere", "root": "LUMIERE"},
        "folds": {"protocol": "patient", "k": 3, "seed": 1},
        # any NIfTI will do as the atlas of a dry run
        "preprocessing": {"skull_strip": {"method": "passthrough"},
                          "template": {"head": str(flair[0]), "brain_mask": str(flair[1])}},
        "experiments": {
            "flair": {"modalities": ["T1", "FLAIR"], "input": "stack", "architecture": "densenet121"},
            "t1": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121"},
        },
    }


@pytest.mark.slow
def test_an_experiment_on_a_modality_most_pairs_lack_is_refused_before_preprocessing(tmp_path: Path) -> None:
    config = sparse_flair_config(write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=6))
    snakemake(tmp_path, config)
    n_pairs = len(read(tmp_path / "results" / "index" / "pairs.tsv"))
    refused = plan(tmp_path)
    assert refused.returncode == 1
    lines = [line for line in (refused.stdout + refused.stderr).splitlines() if line.startswith("experiment ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("experiment flair needs T1,FLAIR, which ") and f"of {n_pairs} scorable pairs (" in lines[0]
    assert lines[0].endswith("set index.allow_sparse_experiments: true) (refused)")
    assert "Traceback" not in refused.stderr

    config["index"] = {"allow_sparse_experiments": True}
    snakemake(tmp_path, config)  # a key no index rule reads: nothing of the index reruns
    allowed = plan(tmp_path)
    assert allowed.returncode == 0, allowed.stdout[-3000:]
    lines = [line for line in (allowed.stdout + allowed.stderr).splitlines() if line.startswith("experiment ")]
    assert len(lines) == 1 and lines[0].startswith("experiment flair needs T1,FLAIR, which "), lines
    assert not (tmp_path / "results" / "preprocessed").exists()


@pytest.mark.slow
def test_folds_k_beyond_the_cohort_is_refused_before_the_folds_job(tmp_path: Path) -> None:
    write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=2)
    config = {"dataset": {"source": "lumiere", "root": "LUMIERE"}, "folds": {"k": 2}}
    snakemake(tmp_path, config)
    n_patients = read(tmp_path / "results" / "index" / "pairs.tsv")["patient"].nunique()
    expected = (f"folds.k = 9 is more than the cohort's {n_patients} patients with scorable pairs "
                f"(index/pairs.tsv): lower folds.k to at most {n_patients}")
    folds_before = (tmp_path / "results" / "splits" / "folds.json").read_bytes()
    config["folds"]["k"] = 9
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    refused = plan(tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert expected in (refused.stdout + refused.stderr).splitlines()
    # the folds alone as the target: refused at planning with the same line, before the folds job starts
    folds = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "results/splits/folds.json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert folds.returncode == 1 and "Traceback" not in folds.stderr
    assert expected in (folds.stdout + folds.stderr).splitlines()
    assert (tmp_path / "results" / "splits" / "folds.json").read_bytes() == folds_before
    # a target that needs no folds (a study's brain mask) is not refused
    study = read(tmp_path / "results" / "index" / "pairs.tsv").iloc[0]
    preprocess = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "-n", "--cores", "1",
         f"results/skullstrip/{study['patient']}/{study['current']}/brain_mask.nii.gz"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert preprocess.returncode == 0, (preprocess.stdout + preprocess.stderr)[-3000:]


@pytest.mark.slow
def test_a_read_only_dataset_tree_is_read_and_left_as_it_was(tmp_path: Path) -> None:
    """The index stage on a tree without write permission (as a shared, read-only LUMIERE copy is). Tests may
    run as root, which permissions do not stop, so the tree is also checked byte for byte and by mtime."""
    root = write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=2)
    for path in [*root.rglob("*"), root]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = {p: (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns) for p in root.rglob("*")}
    try:
        snakemake(tmp_path, {"dataset": {"source": "lumiere", "root": "LUMIERE"}, "folds": {"k": 2}})
        after = {p: (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns) for p in root.rglob("*")}
        assert after == before
        assert len(read(tmp_path / "results" / "index" / "pairs.tsv")) > 0
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def planned_rules(workdir: Path, config: dict) -> set[str]:
    """The rules `snakemake -n` would run for the index stage's targets."""
    run = snakemake(workdir, config, "--dry-run")
    return {rule for rule, _ in planned_jobs(run.stdout + run.stderr)}


@pytest.mark.slow
def test_the_index_follows_study_folders_renamed_added_or_moved(tmp_path: Path) -> None:
    """Imaging/'s listing is a param of rule index: a renamed or added study folder reruns the index (and the
    pairs and folds), an unchanged tree plans nothing, and the run moved elsewhere with its tree plans nothing."""
    root = write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=2)
    config = {"dataset": {"source": "lumiere", "root": "LUMIERE"}, "folds": {"k": 2}}
    snakemake(tmp_path, config)
    assert planned_rules(tmp_path, config) == set()
    pairs = set(read(tmp_path / "results" / "index" / "pairs.tsv")["id"])

    # the unrated week-030 renamed to week-022, which has a rating row (PD) but had no folder
    patient = root / "Imaging" / "Patient-002"
    (patient / "week-030").rename(patient / "week-022")
    assert {"index", "pairs", "folds"} <= planned_rules(tmp_path, config)
    snakemake(tmp_path, config)
    renamed = set(read(tmp_path / "results" / "index" / "pairs.tsv")["id"])
    assert "Patient-002_week-022_vs_week-015" in renamed - pairs
    assert planned_rules(tmp_path, config) == set()

    # an added study folder (a copy of another study under a new week) and a replaced image
    shutil.copytree(patient / "week-040", patient / "week-045")
    assert "index" in planned_rules(tmp_path, config)
    snakemake(tmp_path, config)
    assert "week-045" in set(read(tmp_path / "results" / "index" / "studies.tsv")["study"])

    # the run folder with its dataset moved elsewhere as `cp -a` would: same content, same relative paths
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path, moved / "run", symlinks=True, ignore=shutil.ignore_patterns("elsewhere"))
    shutil.rmtree(root)
    assert planned_rules(moved / "run", config) == set()
