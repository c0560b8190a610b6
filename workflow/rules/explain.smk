# Explain stage: captum attribution maps of chosen test pairs per trained model, as NIfTI maps on the
# atlas grid and PNGs, scored against the tumour (results/explain/). Only `explain.*` settings are
# params here, so changing them reruns these rules and never training.


checkpoint explain_selection:
    input:
        summary=SUMMARY,
    output:
        f"{RESULTS}/explain/selection.tsv",
    log:
        f"{LOGS}/explain_selection/explain_selection.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(
            experiments=EXPERIMENTS,
            listed=config["explain"]["experiments"],
            best=config["explain"]["best"],
        ),
        code=script_code("explain_selection"),
    script:
        "../scripts/explain_selection.py"


rule explain:
    input:
        model=f"{MODEL_DIR}/model.pt",
        predictions=f"{MODEL_DIR}/predictions.tsv",
        metadata=f"{MODEL_DIR}/metadata.json",
        pairs=PAIRS,
        manifest=MANIFEST,
        # the tensor store's grid; its study files are inputs of the train job that made model.pt
        grid=TENSOR_GRID,
    output:
        report(
            directory(EXPLAIN_DIR),
            patterns=["{name}.png"],
            caption="../report/explain_figure.rst",
            category="Explanations",
            subcategory="{experiment}",
        ),
    log:
        f"{LOGS}/explain/{{experiment}}/fold_{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/explain/{{experiment}}/fold_{{fold}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["explain"]["resources"]["threads"]
    resources:
        mem_mb=config["explain"]["resources"]["mem_mb"],
        runtime=config["explain"]["resources"]["runtime"],
    params:
        settings=settings(**explain_settings()),
        code=script_code("explain"),
    script:
        "../scripts/explain.py"


rule explain_summary:
    input:
        dirs=explain_directories,
    output:
        EXPLAIN_SUMMARY,
    log:
        f"{LOGS}/explain_summary/explain_summary.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        # which experiments are explained: a changed choice reruns the summary, and so reaches the
        # explain_selection checkpoint and the new maps (the maps' own rule leaves these out)
        settings=settings(
            best=config["explain"]["best"],
            experiments=config["explain"]["experiments"],
        ),
        code=script_code("explain_summary"),
    script:
        "../scripts/explain_summary.py"
