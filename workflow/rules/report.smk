# Report stage: the front page (ranking, per-class table, ablations), HTML tables (cohort, registration QC,
# results, explanations grouped by true class, provenance) for
# `snakemake --report results/report.html`; the figures are flagged with report() by the rules that make them.


rule cohort_summary:
    input:
        studies=STUDIES,
        excluded=EXCLUDED,
        pairs=PAIRS,
        folds=FOLDS_JSON,
        missing=MISSING_SEGMENTATION,
    output:
        html=report(
            f"{RESULTS}/report/cohort.html",
            caption="../report/cohort.rst",
            category="Cohort",
            subcategory="Overview",
        ),
        overview=f"{RESULTS}/report/cohort/overview.tsv",
        pairs_per_class=f"{RESULTS}/report/cohort/pairs_per_class.tsv",
        exclusion_reasons=f"{RESULTS}/report/cohort/exclusion_reasons.tsv",
    log:
        f"{LOGS}/cohort_summary/cohort_summary.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(reference=config["index"]["reference"]),
        code=script_code("cohort_summary"),
    script:
        "../scripts/cohort_summary.py"


rule qc_table:
    input:
        registration=REGISTRATION_QC,
    output:
        html=report(
            f"{RESULTS}/report/registration_qc.html",
            caption="../report/registration_qc.rst",
            category="QC",
            subcategory="Registration",
        ),
    log:
        f"{LOGS}/qc_table/qc_table.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        code=script_code("qc_table"),
    script:
        "../scripts/qc_table.py"


rule results_table:
    input:
        summary=SUMMARY,
        folds=SUMMARY_FOLDS,
    output:
        html=report(
            f"{RESULTS}/report/results.html",
            caption="../report/results.rst",
            category="Results",
            subcategory="Experiments",
        ),
    log:
        f"{LOGS}/results_table/results_table.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        # tables: [input name, heading], in display order
        settings={
            "title": "Results",
            "tables": [
                [
                    "summary",
                    "Median balanced accuracy over the test folds (learned models and baselines)",
                ],
                ["folds", "Test pairs every row is scored on, per fold"],
            ],
        },
        code=script_code("table_page"),
    script:
        "../scripts/table_page.py"


rule explanations_page:
    input:
        explain=EXPLAIN_SUMMARY,
        dirs=explain_directories,
    output:
        html=report(
            f"{RESULTS}/report/explanations.html",
            caption="../report/explanations.rst",
            category="Explanations",
            subcategory="By true class",
        ),
    log:
        f"{LOGS}/explanations_page/explanations_page.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(
            min_pointing_hit_rate=config["report"]["min_pointing_hit_rate"]
        ),
        code=script_code("explanations_page"),
    script:
        "../scripts/explanations_page.py"


rule front_page:
    input:
        summary=SUMMARY,
        ranking=RANKING_PLOT,
        ablations=ABLATION_PLOT,
    output:
        html=report(
            FRONT_PAGE,
            caption="../report/front_page.rst",
            category="At a glance",
        ),
        landing=LANDING_TABLE,
    log:
        f"{LOGS}/front_page/front_page.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(
            experiments=EXPERIMENTS, low_recall=config["report"]["low_recall"]
        ),
        code=script_code("front_page"),
    script:
        "../scripts/front_page.py"


rule software_versions:
    output:
        html=report(
            f"{RESULTS}/report/provenance.html",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
        versions=f"{RESULTS}/report/software_versions.tsv",
        config=f"{RESULTS}/report/config.yaml",
    log:
        f"{LOGS}/software_versions/software_versions.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        # a plain dict, not settings(): config keeps its order in the recorded config.yaml;
        # snakemake_version: the running Snakemake, which the rule's own environment need not contain
        settings={
            "pins": PINNED_REQUIREMENTS,
            "config": config,
            "snakemake_version": __import__("snakemake").__version__,
        },
        code=script_code("software_versions"),
    script:
        "../scripts/software_versions.py"
