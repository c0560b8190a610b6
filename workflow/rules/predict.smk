# Predict stage: each experiment's fold models exported as one `torch.export` program with its model card
# (results/export/), loadable without this workflow.


rule export_model:
    input:
        models=expand(f"{MODEL_DIR}/model.pt", fold=FOLDS, allow_missing=True),
        metadata=expand(f"{MODEL_DIR}/metadata.json", fold=FOLDS, allow_missing=True),
        brain=ATLAS_GRID["brain"],
        brain_mask=ATLAS_GRID["brain_mask"],
        grid=TENSOR_GRID,
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


rule predict_register:
    input:
        unpack(predict_register_inputs),
    output:
        directory(PREDICT_STUDY_DIR),
    log:
        f"{LOGS}/predict_register/{{name}}/{{key}}.log",
    benchmark:
        f"{BENCHMARKS}/predict_register/{{name}}/{{key}}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    threads: preprocess_threads()
    resources:
        mem_mb=PREPROCESS["mem_mb"],
    params:
        # the training cohort's register settings: a new study is preprocessed exactly as they were
        settings=predict_register_settings(),
        code=script_code("register"),
    script:
        "../scripts/register.py"


rule predict:
    input:
        sheet=lambda wildcards: PREDICT["sheets"][wildcards.name],
        model=expand(f"{EXPORT_DIR}/model.pt2", experiment=PREDICT["experiment"] or []),
        studies=predict_study_dirs,
    output:
        rating=f"{PREDICT_DIR}/rating.tsv",
        votes=f"{PREDICT_DIR}/votes.tsv",
        saliency=directory(f"{PREDICT_DIR}/saliency"),
        tensors=directory(f"{PREDICT_DIR}/tensors"),
    log:
        f"{LOGS}/predict/{{name}}.log",
    benchmark:
        f"{BENCHMARKS}/predict/{{name}}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=settings(
            experiment=PREDICT["experiment"],
            saliency=PREDICT["saliency"],
            input=PREPROCESS["input"],
        ),
        code=script_code("predict"),
    script:
        "../scripts/predict.py"
