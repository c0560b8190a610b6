# Explain stage: captum attribution maps of chosen test pairs per trained model, as NIfTI maps on the
# atlas grid and PNGs, scored against the tumour (results/explain/). Only `explain.*` settings are
# params here, so changing them reruns these rules and never training.


checkpoint explain_selection:
    input:
        summary=f"{RESULTS}/metrics/summary.tsv",
        src=package_sources("explain_summary", "tables"),
    output:
        f"{RESULTS}/explain/selection.tsv",
    log:
        f"{LOGS}/explain_selection/explain_selection.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        experiments=EXPERIMENTS,
        listed=config["explain"]["experiments"],
        best=config["explain"]["best"],
    script:
        "../scripts/explain_selection.py"


rule explain:
    input:
        model=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/model.pt",
        predictions=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/predictions.tsv",
        metadata=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/metadata.json",
        pairs=f"{RESULTS}/index/pairs.tsv",
        manifest=f"{RESULTS}/preprocessed/manifest.tsv",
        src=package_sources(
            "tables",
            "explain",
            "explain_run",
            "explain_figures",
            "attribution_overlap",
            "explain_summary",
            "experiments",
            "pair_dataset",
            "models",
            "clinical",
        ),
    output:
        report(
            directory(f"{RESULTS}/explain/{{experiment}}/fold_{{fold}}"),
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
        settings=explain_settings(),
    script:
        "../scripts/explain.py"


rule explain_summary:
    input:
        dirs=explain_directories,
        src=package_sources("explain_summary"),
    output:
        f"{RESULTS}/explain/summary.tsv",
    log:
        f"{LOGS}/explain_summary/explain_summary.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    script:
        "../scripts/explain_summary.py"
