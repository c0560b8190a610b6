# Evaluate stage: the metrics of each experiment over its test folds, then the summary table that ranks
# the experiments beside the majority-class and rule-based baselines, every row scored on the same test
# pairs of each fold (those every row scored), with its figures.


rule aggregate_experiment:
    input:
        # every fold x seed run (training.seeds)
        metrics=run_files("metrics.json"),
        predictions=run_files("predictions.tsv"),
    output:
        metrics=f"{METRICS}/{{experiment}}.json",
        predictions=EXPERIMENT_PREDICTIONS,
    log:
        f"{LOGS}/aggregate_experiment/{{experiment}}.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(
            experiment=lambda wildcards: RESOLVED_EXPERIMENTS[wildcards.experiment]
        ),
        code=script_code("aggregate_experiment"),
    script:
        "../scripts/aggregate_experiment.py"


rule summary:
    input:
        experiments=expand(f"{METRICS}/{{experiment}}.json", experiment=EXPERIMENTS),
        experiment_predictions=expand(EXPERIMENT_PREDICTIONS, experiment=EXPERIMENTS),
        baselines=list(summary_baselines()),
        baseline_predictions=list(summary_baselines().values()),
        pairs=PAIRS,
        folds=FOLDS_JSON,
    output:
        summary=report(
            SUMMARY,
            caption="../report/summary.rst",
            category="Results",
            subcategory="Experiments",
        ),
        baseline=f"{METRICS}/majority_class.json",
        folds=report(
            SUMMARY_FOLDS,
            caption="../report/summary_folds.rst",
            category="Results",
            subcategory="Experiments",
        ),
        accuracy_plot=report(
            f"{RESULTS}/plots/balanced_accuracy.png",
            caption="../report/balanced_accuracy.rst",
            category="Results",
            subcategory="Experiments",
        ),
        ranking_plot=report(
            RANKING_PLOT,
            caption="../report/ranking.rst",
            category="Results",
            subcategory="Experiments",
        ),
        confusion_plot=report(
            CONFUSION_PLOT,
            caption="../report/confusion_matrices.rst",
            category="Results",
            subcategory="Confusion matrices",
        ),
        ablation_plot=report(
            ABLATION_PLOT,
            caption="../report/ablations.rst",
            category="Results",
            subcategory="Ablations",
        ),
    log:
        f"{LOGS}/summary/summary.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(
            bootstrap=config["training"]["bootstrap"],
            seed=config["training"]["seed"],
            experiments=EXPERIMENTS,
            evaluate=config["evaluate"],
            experiment_settings={
                name: {
                    "reference": experiment["reference"],
                    "references": experiment["references"],
                }
                for name, experiment in RESOLVED_EXPERIMENTS.items()
            },
        ),
        code=script_code("summary"),
    script:
        "../scripts/summary.py"


rule training_curves:
    input:
        histories=expand(f"{MODEL_DIR}/history.tsv", fold=FOLDS, allow_missing=True),
        metrics=expand(f"{MODEL_DIR}/metrics.json", fold=FOLDS, allow_missing=True),
    output:
        report(
            TRAINING_CURVES,
            caption="../report/training_curves.rst",
            category="Results",
            subcategory="Training curves",
        ),
    log:
        f"{LOGS}/training_curves/{{experiment}}.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(selection=TRAINING["selection"]),
        code=script_code("training_curves"),
    script:
        "../scripts/training_curves.py"
