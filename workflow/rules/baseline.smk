# Baseline stage: every study's segmentation measured once (study_measures), then rows of summary.tsv
# scored on the experiments' test folds: RANO 2.0 arithmetic against the patient's baseline and nadir
# (rano_rules; the oracle on the demo) and against the previous scan only (rano_rules_previous), RANO 2010
# as LUMIERE's raters practised it (rano_expert) and gradient boosting on the measures (volumes_gbm).


# the baseline keys that change what a study measures (ranoflow.baseline.study_measures.MeasureSettings)
MEASURE_KEYS = [
    "source",
    "volumes",
    "min_diameter_mm",
    "max_target_lesions",
    "new_lesion_min_volume_mm3",
    "lesion_grid_mm",
]


rule study_measures:
    input:
        studies=STUDIES,
    output:
        measures=STUDY_MEASURES,
        lesions=STUDY_LESIONS,
    log:
        f"{LOGS}/study_measures/study_measures.log",
    benchmark:
        f"{BENCHMARKS}/study_measures/study_measures.tsv"
    conda:
        "../../envs/base.yaml"
    threads: config["baseline"]["threads"]
    params:
        # the cache follows each segmentation's bytes and these settings, so a rerun measures only what changed
        settings=settings(
            baseline={key: config["baseline"][key] for key in MEASURE_KEYS}
        ),
        cache=STUDY_MEASURES_CACHE,
        code=script_code("study_measures"),
    script:
        "../scripts/study_measures.py"


rule rano_baseline:
    input:
        pairs=PAIRS,
        studies=STUDIES,
        measures=STUDY_MEASURES,
        lesions=STUDY_LESIONS,
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
        predictions_expert=report(
            RANO_EXPERT_PREDICTIONS,
            caption="../report/rano_expert.rst",
            category="Results",
            subcategory="Rule-based RANO",
        ),
        metrics_expert=RANO_EXPERT_METRICS,
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


rule volumes_gbm:
    input:
        pairs=PAIRS,
        studies=STUDIES,
        measures=STUDY_MEASURES,
        lesions=STUDY_LESIONS,
        folds=FOLDS_JSON,
    output:
        predictions=report(
            VOLUMES_GBM_PREDICTIONS,
            caption="../report/volumes_gbm.rst",
            category="Results",
            subcategory="Learned baselines",
        ),
        metrics=VOLUMES_GBM_METRICS,
    log:
        f"{LOGS}/volumes_gbm/volumes_gbm.log",
    benchmark:
        f"{BENCHMARKS}/volumes_gbm/volumes_gbm.tsv"
    conda:
        "../../envs/base.yaml"
    threads: config["baseline"]["threads"]
    params:
        settings=settings(
            baseline=config["baseline"], bootstrap=config["training"]["bootstrap"]
        ),
        code=script_code("volumes_gbm"),
    script:
        "../scripts/volumes_gbm.py"


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


# the non-circular rule row: the expert rule on segmentations derived from the preprocessed images
rule image_measures:
    input:
        manifest=MANIFEST,
    output:
        measures=IMAGE_MEASURES,
        lesions=IMAGE_LESIONS,
    log:
        f"{LOGS}/image_measures/image_measures.log",
    benchmark:
        f"{BENCHMARKS}/image_measures/image_measures.tsv"
    conda:
        "../../envs/base.yaml"
    threads: config["baseline"]["threads"]
    params:
        # the cache follows each study's image bytes and these settings
        settings=settings(
            baseline={
                **{
                    key: config["baseline"][key]
                    for key in MEASURE_KEYS
                    if key not in ("source", "volumes")
                },
                "image_rule": config["baseline"]["image_rule"],
            }
        ),
        cache=IMAGE_MEASURES_CACHE,
        code=script_code("image_measures"),
    script:
        "../scripts/image_measures.py"


rule rano_expert_images:
    input:
        pairs=PAIRS,
        studies=STUDIES,
        measures=IMAGE_MEASURES,
        lesions=IMAGE_LESIONS,
        folds=FOLDS_JSON,
    output:
        predictions=report(
            RANO_EXPERT_IMAGES_PREDICTIONS,
            caption="../report/rano_expert_images.rst",
            category="Results",
            subcategory="Rule-based RANO",
        ),
        metrics=RANO_EXPERT_IMAGES_METRICS,
        missing=RANO_EXPERT_IMAGES_MISSING,
    log:
        f"{LOGS}/rano_expert_images/rano_expert_images.log",
    benchmark:
        f"{BENCHMARKS}/rano_expert_images/rano_expert_images.tsv"
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(
            baseline={
                "expert": config["baseline"]["expert"],
                "image_rule": config["baseline"]["image_rule"],
                "missing_prediction": config["baseline"]["missing_prediction"],
            },
            bootstrap=config["training"]["bootstrap"],
        ),
        code=script_code("rano_expert_images"),
    script:
        "../scripts/rano_expert_images.py"


rule rano_expert_images_plot:
    input:
        predictions=RANO_EXPERT_IMAGES_PREDICTIONS,
        metrics=RANO_EXPERT_IMAGES_METRICS,
    output:
        report(
            f"{RESULTS}/plots/rano_expert_images/rano_expert_images.png",
            caption="../report/rano_expert_images_plot.rst",
            category="Results",
            subcategory="Rule-based RANO",
        ),
    log:
        f"{LOGS}/rano_expert_images_plot/rano_expert_images_plot.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        code=script_code("rano_baseline_plot"),
    script:
        "../scripts/rano_baseline_plot.py"
