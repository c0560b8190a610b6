# Predict stage: each experiment's fold models exported as one `torch.export` program with its model card
# (results/export/), loadable without this workflow.


rule export_model:
    input:
        models=expand(f"{MODEL_DIR}/model.pt", fold=FOLDS, allow_missing=True),
        metadata=expand(f"{MODEL_DIR}/metadata.json", fold=FOLDS, allow_missing=True),
        brain=ATLAS_GRID["brain"],
        brain_mask=ATLAS_GRID["brain_mask"],
    output:
        model=f"{EXPORT_DIR}/model.pt2",
        card=f"{EXPORT_DIR}/model.json",
    log:
        f"{LOGS}/export_model/{{experiment}}.log",
    conda:
        "../../envs/torch.yaml"
    params:
        settings=settings(preprocessing=export_preprocessing()),
        code=script_code("export_model"),
    script:
        "../scripts/export_model.py"
