"""A rule's script runs in an environment built from its env file alone.

Without conda: a plain virtualenv gets exactly the pip packages of envs/base.yaml (from the configured
package indexes), and the `index` rule's script runs in it on a LUMIERE-shaped tree. The script is
given what Snakemake gives it, a `snakemake` object with the rule's input, output, params, log and
wildcards; Snakemake itself is not installed there, so any import the env file misses fails the job.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from lumiere_fixture import write_lumiere_fixture

from ranoflow import lumiere

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODALITIES = ["CT1", "T1", "T2", "FLAIR"]


def env_pip_packages(name: str) -> list[str]:
    env = yaml.safe_load((REPO / "envs" / name).read_text())
    return [line for dep in env["dependencies"] if isinstance(dep, dict) for line in dep["pip"]]


def virtualenv_of(env_file: str, folder: Path) -> Path:
    """A fresh virtualenv holding the pip packages of envs/<env_file> and their dependencies only."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--only-binary", ":all:",
                    *env_pip_packages(env_file)], check=True, timeout=900)
    return python


RUN_SCRIPT = textwrap.dedent("""
    import runpy, sys
    from types import SimpleNamespace

    class Named(list):  # Snakemake's named lists: items by position and by name
        def __init__(self, **named):
            super().__init__(named.values())
            self.__dict__.update(named)

    class Wildcards(dict):
        pass

    root, results, script = sys.argv[1:4]
    modalities = {modalities!r}
    snakemake = SimpleNamespace(
        input=Named(imaging=f"{{root}}/Imaging", ratings=f"{{root}}/{ratings}", completeness=f"{{root}}/{completeness}"),
        output=Named(studies=f"{{results}}/studies.tsv", orphans=f"{{results}}/orphan_ratings.tsv"),
        # the rule's config values, as separate params and as one `settings` dict
        params=SimpleNamespace(modalities=modalities, settings={{"modalities": modalities}}),
        log=Named(log=f"{{results}}/index.log"), wildcards=Wildcards(), threads=1, rule="index",
        scriptdir=str(__import__("pathlib").Path(script).parent),
    )
    runpy.run_path(script, init_globals={{"snakemake": snakemake}}, run_name="__main__")
""").format(modalities=MODALITIES, ratings=lumiere.RATINGS_CSV, completeness=lumiere.COMPLETENESS_CSV)


def test_index_script_runs_in_a_virtualenv_of_the_base_env_file(tmp_path: Path) -> None:
    python = virtualenv_of("base.yaml", tmp_path / "venv")
    no_snakemake = subprocess.run([str(python), "-c", "import snakemake"], capture_output=True)
    assert no_snakemake.returncode != 0  # nothing of the test's own environment leaks in

    root = write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=2)
    results = tmp_path / "results"
    results.mkdir()
    run = subprocess.run([str(python), "-c", RUN_SCRIPT, str(root), str(results),
                          str(REPO / "workflow" / "scripts" / "index.py")], capture_output=True, text=True)
    log = (results / "index.log").read_text() if (results / "index.log").exists() else ""
    assert run.returncode == 0, f"{run.stderr[-3000:]}\n{log[-3000:]}"
    studies = (results / "studies.tsv").read_text().splitlines()
    assert len(studies) > 10 and studies[0].startswith("patient\tstudy"), studies[:2]
    assert "study folders of" in log
