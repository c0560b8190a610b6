"""On the shared tiny demo run: the exported model of an experiment, loaded in a fresh process without
ranoflow, gives the probabilities the workflow wrote for a test pair (to 1e-4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_export import run_export_check

pytestmark = pytest.mark.slow


def test_the_exported_demo_model_reproduces_the_workflows_probabilities(tiny_demo, tmp_path: Path,
                                                                        monkeypatch) -> None:
    from ranoflow.explain.pair_maps import pair_input
    from ranoflow.tables import read_tsv
    from ranoflow.train.pair_items import pair_items

    workdir, config = tiny_demo
    monkeypatch.chdir(workdir)  # the manifest's study folders are relative to the run's root
    experiment = "exp_a"
    export = workdir / "results" / "export" / experiment
    card = json.loads((export / "model.json").read_text())
    assert card["folds"] == [0, 1]
    resolved = card["experiment_settings"]
    for fold in card["folds"]:
        predictions = pd.read_csv(workdir / f"results/models/{experiment}/fold_{fold}/predictions.tsv", sep="\t")
        items, _ = pair_items(read_tsv("results/index/pairs.tsv"), read_tsv("results/preprocessed/manifest.tsv"),
                              list(predictions["id"][:1]), resolved["modalities"], resolved["clinical"],
                              resolved["training"]["use_flagged"], resolved["references"])
        pair = pair_input(items[0], resolved)
        extra = pair.extra[0].numpy() if pair.extra else np.zeros((1, 0), np.float32)
        out = run_export_check(export / "model.pt2", pair.image.numpy(), extra, tmp_path)
        written = predictions.set_index("id").loc[items[0]["id"], [f"prob_{c}" for c in card["classes"]]]
        assert np.allclose(out["per_fold"][fold][0], written.to_numpy(float), atol=1e-4)
