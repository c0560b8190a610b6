"""config/lumiere.yaml on a LUMIERE-shaped tree, on a machine without Debian's mricron-data: its atlas is
built from the dataset (rule dataset_template), so the plan needs no system file and a study preprocesses."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from demo_run import check, snakemake, snapshot

from ranoflow import lumiere
from ranoflow.dataset.generator import SyntheticConfig, generate_dataset
from ranoflow.preprocess.dataset_template import average_template, template_images

pytestmark = pytest.mark.slow

MRICRON = "/usr/share/mricron"
# Small and fast: coarse voxels; the rest of the settings are config/lumiere.yaml's.
SITE = {
    "preprocessing": {"registration_mm": 6.0, "spacing_mm": 6.0, "n4": False, "threads": 1, "mem_mb": 2000},
    "folds": {"k": 2},
}


@pytest.fixture(scope="module")
def lumiere_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LUMIERE-shaped tree (Imaging/, the three CSVs, DeepBraTumIA atlas-space outputs), 4 patients."""
    base = tmp_path_factory.mktemp("lumiere")
    config = SyntheticConfig.from_dict({"n_patients": 4, "studies_per_patient": [3, 4], "seed": 5, "skull": False,
                                        "voxel_mm": 6.0, "slice_mm": 6.0, "template_mm": 5.0})
    generate_dataset(config, root=base / "LUMIERE", template_dir=base / "generator_template",
                     truth_dir=base / "truth", threads=1)
    return base / "LUMIERE"


def test_dataset_template_is_the_mean_of_the_atlas_space_images(lumiere_tree: Path) -> None:
    folders = sorted(str(p.parent) for p in lumiere_tree.glob(f"Imaging/*/*/{lumiere.DBT_SKULLSTRIP['T1']}"))
    paths = template_images(folders, "T1")
    assert len(paths) == len(folders) > 4
    template = average_template(paths)
    head, mask = template.head.get_fdata(), template.brain_mask.get_fdata()
    first = nib.load(paths[0])
    assert head.shape == first.shape and np.allclose(template.head.affine, first.affine)
    assert head[mask > 0].mean() == pytest.approx(1.0, abs=0.1)  # every image scaled to mean 1 in its brain
    brains = np.mean([np.asarray(nib.load(p).dataobj) > 0 for p in paths], axis=0)
    assert np.array_equal(mask > 0, brains >= 0.5)


def test_lumiere_config_preprocesses_a_study_without_mricron_data(lumiere_tree: Path, tmp_path: Path) -> None:
    root = snapshot(tmp_path)
    site = root / "my_site.yaml"
    site.write_text(yaml.safe_dump({"dataset": {"root": str(lumiere_tree)}, **SITE}))
    configs = ("config/lumiere.yaml", str(site))

    dry = check(snakemake(root, configs[0], configs[1], "-n", "--cores", "1", "results/preprocessed/atlas/brain.nii.gz"))
    assert MRICRON not in dry.stdout + dry.stderr
    assert "rule dataset_template" in dry.stdout

    patient, study = sorted(p.relative_to(lumiere_tree / "Imaging").parts
                            for p in (lumiere_tree / "Imaging").glob("*/week-*"))[1]
    target = f"results/preprocessed/{patient}/{study}"
    check(snakemake(root, configs[0], configs[1], "--cores", "1", target, timeout_s=600))
    status = (root / target / "status.json")
    assert status.is_file(), sorted(p.name for p in (root / target).iterdir())
    assert (root / "results/preprocessed/atlas/dataset_template/head.nii.gz").is_file()
