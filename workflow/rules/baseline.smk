# Baseline stage: the rule-based RANO 2.0 response from the enhancing-tumour sizes of the segmentations,
# against the patient's baseline and nadir (rano_rules) and against the previous scan only
# (rano_rules_previous), scored on the experiments' test folds (both join summary.tsv).
# Both rules read NIfTI (nibabel, scipy), hence the preprocess environment.


rule rano_baseline:
    input:
        pairs=PAIRS,
        studies=STUDIES,
        volumes=STUDY_VOLUMES,
        folds=FOLDS_JSON,
    output:
        predictions=report(
            RANO_RULES_PREDICTIONS,
            caption="../report/rano_baseline.rst",
            category="Results",
            subcategory="Rule-based RANO",
        ),
        metrics=RANO_RULES_METRICS,
        predictions_previous=RANO_RULES_PREVIOUS_PREDICTIONS,
        metrics_previous=RANO_RULES_PREVIOUS_METRICS,
        missing=report(
            MISSING_SEGMENTATION,
            caption="../report/missing_segmentation.rst",
            category="Cohort",
            subcategory="Exclusions",
        ),
    log:
        f"{LOGS}/rano_baseline/rano_baseline.log",
    benchmark:
        f"{BENCHMARKS}/rano_baseline/rano_baseline.tsv"
    conda:
        "../../envs/base.yaml"
    params:
        # bootstrap: the experiments' size, so both CIs of summary.tsv are alike
        settings=settings(
            baseline=config["baseline"], bootstrap=config["training"]["bootstrap"]
        ),
        code=script_code("rano_baseline"),
    script:
        "../scripts/rano_baseline.py"


rule rano_baseline_plot:
    input:
        predictions=RANO_RULES_PREDICTIONS,
        metrics=RANO_RULES_METRICS,
    output:
        report(
            f"{RESULTS}/plots/rano_rules/rano_rules.png",
            caption="../report/rano_baseline_plot.rst",
            category="Results",
            subcategory="Rule-based RANO",
        ),
    log:
        f"{LOGS}/rano_baseline_plot/rano_baseline_plot.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        code=script_code("rano_baseline_plot"),
    script:
        "../scripts/rano_baseline_plot.py"
