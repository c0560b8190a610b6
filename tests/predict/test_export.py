"""The exported fold ensemble loads with torch alone and gives the fold models' probabilities."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from ranoflow.predict.export import export_ensemble, model_card
from ranoflow.train.experiments import resolve_experiments
from ranoflow.train.models import build_model
from ranoflow.train import clinical
from ranoflow.vocabulary import CLASSES

CHECK = Path(__file__).with_name("export_check.py")
TRAINING = {
    "image_size": [32, 32, 32],
    "model_kwargs": {"init_features": 4, "growth_rate": 4, "block_config": [1, 1, 1, 1]},
}


def run_export_check(model: Path, image: np.ndarray, extra: np.ndarray, tmp: Path) -> dict:
    """The check script's output for these inputs, in a process where ranoflow cannot be imported."""
    np.save(tmp / "image.npy", image.astype(np.float32))
    np.save(tmp / "clinical.npy", extra.astype(np.float32))
    run = subprocess.run([sys.executable, str(CHECK), str(model), str(tmp / "image.npy"), str(tmp / "clinical.npy")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def resolved_experiment(clinical_fields: bool) -> dict:
    experiment = {"ablation": "demo", "modalities": ["CT1", "FLAIR"], "input": "stack",
                  "architecture": "densenet121", "clinical": clinical_fields}
    return resolve_experiments({"exp": experiment}, TRAINING)["exp"]


def test_export_reproduces_every_fold_model_without_the_workflow_code(tmp_path: Path) -> None:
    resolved = resolved_experiment(clinical_fields=True)
    width = len(clinical.feature_names(resolved["clinical"]))
    torch.manual_seed(0)
    models = [
        build_model(resolved["architecture"], resolved["in_channels"], len(CLASSES), TRAINING["image_size"],
                    width, resolved["training"]["clinical_hidden"], TRAINING["model_kwargs"]).eval()
        for _ in range(2)
    ]
    atlas = tmp_path / "brain.nii.gz"
    atlas.write_bytes(b"atlas bytes")
    card = model_card(resolved, [0, 1], {"spacing_mm": 5.0}, {"brain": atlas})
    path = export_ensemble(models, resolved, card, tmp_path / "export" / "model.pt2")

    rng = np.random.default_rng(1)
    image = rng.standard_normal((3, resolved["in_channels"], 32, 32, 32)).astype(np.float32)
    extra = rng.random((3, width)).astype(np.float32)
    out = run_export_check(path, image, extra, tmp_path)
    with torch.no_grad():
        expected = torch.stack([torch.softmax(m(torch.from_numpy(image), torch.from_numpy(extra)), 1) for m in models])
    assert np.allclose(out["per_fold"], expected.numpy(), atol=1e-4)
    assert np.allclose(out["mean"], expected.mean(0).numpy(), atol=1e-4)

    written = json.loads((path.parent / "model.json").read_text())
    assert written["classes"] == list(CLASSES) == out["classes"]
    assert written["input"]["channels"] == resolved["channels"]
    assert written["input"]["image_shape"] == [resolved["in_channels"], 32, 32, 32]
    assert written["input"]["clinical_features"] == clinical.feature_names(resolved["clinical"])
    assert written["atlas"]["brain"]["sha256"] == __import__("hashlib").sha256(b"atlas bytes").hexdigest()
    assert written["folds"] == [0, 1]


def test_an_export_without_clinical_data_takes_an_empty_clinical_tensor(tmp_path: Path) -> None:
    resolved = resolved_experiment(clinical_fields=False)
    model = build_model(resolved["architecture"], resolved["in_channels"], len(CLASSES), TRAINING["image_size"],
                        model_kwargs=TRAINING["model_kwargs"]).eval()
    atlas = tmp_path / "brain.nii.gz"
    atlas.write_bytes(b"x")
    path = export_ensemble([model], resolved, model_card(resolved, [0], {}, {"brain": atlas}), tmp_path / "m.ts")
    image = np.random.default_rng(2).standard_normal((1, resolved["in_channels"], 32, 32, 32))
    out = run_export_check(path, image, np.zeros((1, 0)), tmp_path)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(image.astype(np.float32))), 1)
    assert np.allclose(out["mean"], expected.numpy(), atol=1e-4)
