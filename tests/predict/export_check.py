"""Run in a fresh Python process that cannot import ranoflow: load an exported model and its card with
torch alone and print the mean probabilities of the inputs given as .npy files.

    python export_check.py model.pt2 image.npy clinical.npy
"""

import json
import sys

sys.modules["ranoflow"] = None  # any import of the workflow's package now fails

import numpy as np  # noqa: E402
import torch  # noqa: E402

model_path, image_path, clinical_path = sys.argv[1:4]
card = {"model.json": ""}
model = torch.export.load(model_path, extra_files=card).module()
card = json.loads(card["model.json"])
image = torch.from_numpy(np.load(image_path))
clinical = torch.from_numpy(np.load(clinical_path))
assert list(image.shape[1:]) == card["input"]["image_shape"], (image.shape, card["input"]["image_shape"])
with torch.no_grad():
    per_fold = model(image, clinical)
print(json.dumps({"classes": card["classes"], "per_fold": per_fold.tolist(), "mean": per_fold.mean(0).tolist()}))
