# Training stage: self-supervised pretraining per task and fold, one train job per experiment and fold
# (GPU-resourced on a cluster), aggregation per experiment and the summary table with plots.
# Every setting reaches the scripts as params (the resolved experiment or task as one dict).


rule pretrain:
    input:
        pairs=f"{RESULTS}/index/pairs.tsv",
        folds=f"{RESULTS}/splits/folds.json",
        manifest=f"{RESULTS}/preprocessed/manifest.tsv",
        src=TRAIN_SOURCES,
    output:
        weights=f"{RESULTS}/pretrained/{{task}}/fold_{{fold}}/backbone.pt",
        history=f"{RESULTS}/pretrained/{{task}}/fold_{{fold}}/history.tsv",
    log:
        f"{LOGS}/pretrain/{{task}}/fold_{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/pretrain/{{task}}/fold_{{fold}}.tsv"
    wildcard_constraints:
        task="|".join(map(re.escape, PRETEXT_TASKS)) or "no-task",
    conda:
        "../../envs/torch.yaml"
    threads: config["resources"]["pretrain"]["threads"]
    resources:
        gpu=config["resources"]["pretrain"]["gpu"],
        runtime=config["resources"]["pretrain"]["runtime"],
        mem_mb=config["resources"]["pretrain"]["mem_mb"],
    params:
        task=lambda wildcards: PRETEXT_TASKS[wildcards.task],
    script:
        "../scripts/pretrain.py"


rule train:
    input:
        pairs=f"{RESULTS}/index/pairs.tsv",
        folds=f"{RESULTS}/splits/folds.json",
        manifest=f"{RESULTS}/preprocessed/manifest.tsv",
        pretrained=pretrained_weights,
        src=TRAIN_SOURCES,
    output:
        model=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/model.pt",
        predictions=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/predictions.tsv",
        metrics=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/metrics.json",
        history=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/history.tsv",
        metadata=f"{RESULTS}/models/{{experiment}}/fold_{{fold}}/metadata.json",
    log:
        f"{LOGS}/train/{{experiment}}/fold_{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{experiment}}/fold_{{fold}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["resources"]["train"]["threads"]
    resources:
        gpu=config["resources"]["train"]["gpu"],
        runtime=config["resources"]["train"]["runtime"],
        mem_mb=config["resources"]["train"]["mem_mb"],
    params:
        experiment=lambda wildcards: RESOLVED_EXPERIMENTS[wildcards.experiment],
    script:
        "../scripts/train.py"


rule aggregate_experiment:
    input:
        metrics=expand(
            f"{RESULTS}/models/{{{{experiment}}}}/fold_{{fold}}/metrics.json",
            fold=FOLDS,
        ),
        predictions=expand(
            f"{RESULTS}/models/{{{{experiment}}}}/fold_{{fold}}/predictions.tsv",
            fold=FOLDS,
        ),
        src=package_sources("aggregate", "metrics", "plots", "tables"),
    output:
        f"{RESULTS}/metrics/{{experiment}}.json",
    log:
        f"{LOGS}/aggregate_experiment/{{experiment}}.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        experiment=lambda wildcards: RESOLVED_EXPERIMENTS[wildcards.experiment],
    script:
        "../scripts/aggregate_metrics.py"


rule summary:
    input:
        experiments=expand(
            f"{RESULTS}/metrics/{{experiment}}.json", experiment=EXPERIMENTS
        ),
        extra=summary_extra_metrics(),
        pairs=f"{RESULTS}/index/pairs.tsv",
        folds=f"{RESULTS}/splits/folds.json",
        src=package_sources("aggregate", "metrics", "plots", "tables"),
    output:
        summary=report(
            f"{RESULTS}/metrics/summary.tsv",
            caption="../report/summary.rst",
            category="Results",
            subcategory="Experiments",
        ),
        baseline=f"{RESULTS}/metrics/majority_class.json",
        accuracy_plot=report(
            f"{RESULTS}/plots/balanced_accuracy.png",
            caption="../report/balanced_accuracy.rst",
            category="Results",
            subcategory="Experiments",
        ),
        confusion_plot=report(
            f"{RESULTS}/plots/confusion_best.png",
            caption="../report/confusion_best.rst",
            category="Results",
            subcategory="Experiments",
        ),
    log:
        f"{LOGS}/summary/summary.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        bootstrap=config["training"]["bootstrap"],
        seed=config["training"]["seed"],
    script:
        "../scripts/aggregate_metrics.py"
