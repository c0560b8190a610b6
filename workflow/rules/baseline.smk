# Rule-based RANO 2.0 baseline: enhancing-tumour size change between the segmentations of each pair,
# scored on the experiments' test folds (results/metrics/rano_rules.json joins summary.tsv).
# Both rules read NIfTI (nibabel, scipy), hence the preprocess environment.


rule rano_baseline:
    input:
        pairs=f"{RESULTS}/index/pairs.tsv",
        studies=f"{RESULTS}/index/studies.tsv",
        folds=f"{RESULTS}/splits/folds.json",
        src=package_sources(
            "rano_rules", "rano_baseline", "aggregate", "metrics", "lumiere", "tables"
        ),
    output:
        predictions=report(
            f"{RESULTS}/baseline/rano_rules_predictions.tsv",
            caption="../report/rano_baseline.rst",
            category="Results",
            subcategory="Rule-based RANO",
        ),
        metrics=f"{RESULTS}/metrics/rano_rules.json",
        missing=report(
            f"{RESULTS}/baseline/missing_segmentation.tsv",
            caption="../report/missing_segmentation.rst",
            category="Cohort",
            subcategory="Exclusions",
        ),
    log:
        f"{LOGS}/rano_baseline/rano_baseline.log",
    benchmark:
        f"{BENCHMARKS}/rano_baseline/rano_baseline.tsv"
    conda:
        "../../envs/preprocess.yaml"
    params:
        baseline=config["baseline"],
        # the experiments' bootstrap size, so both CIs of summary.tsv are alike
        bootstrap=config["training"]["bootstrap"],
    script:
        "../scripts/rano_baseline.py"


rule rano_baseline_plot:
    input:
        predictions=f"{RESULTS}/baseline/rano_rules_predictions.tsv",
        metrics=f"{RESULTS}/metrics/rano_rules.json",
        src=package_sources("report_figures", "rano_rules", "lumiere"),
    output:
        report(
            f"{RESULTS}/plots/rano_rules/rano_rules.png",
            caption="../report/rano_baseline_plot.rst",
            category="Results",
            subcategory="Rule-based RANO",
        ),
    log:
        f"{LOGS}/rano_baseline_plot/rano_baseline_plot.log",
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/report_baseline_plot.py"
