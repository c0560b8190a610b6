# Report stage: HTML tables (cohort, registration QC, results, explanations, provenance) for
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


rule explanations_table:
    input:
        explain=EXPLAIN_SUMMARY,
    output:
        html=report(
            f"{RESULTS}/report/explanations.html",
            caption="../report/explanations.rst",
            category="Explanations",
        ),
    log:
        f"{LOGS}/explanations_table/explanations_table.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings={
            "title": "Explanations",
            "tables": [
                ["explain", "Attribution overlap with the tumour per explained model"]
            ],
        },
        code=script_code("table_page"),
    script:
        "../scripts/table_page.py"


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
