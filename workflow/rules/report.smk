# Report stage: HTML tables (cohort, registration QC, results, explanations, provenance) for
# `snakemake --report results/report.html`; the figures are flagged with report() by the rules that make them.


rule cohort_summary:
    input:
        studies=f"{RESULTS}/index/studies.tsv",
        excluded=f"{RESULTS}/index/excluded.tsv",
        pairs=f"{RESULTS}/index/pairs.tsv",
        folds=f"{RESULTS}/splits/folds.json",
        missing=f"{RESULTS}/baseline/missing_segmentation.tsv",
        src=package_sources("cohort", "report_html", "tables"),
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
    conda:
        "../../envs/base.yaml"
    params:
        reference=config["index"]["reference"],
    script:
        "../scripts/cohort_summary.py"


rule qc_table:
    input:
        registration=f"{RESULTS}/qc/registration.tsv",
        src=package_sources("cohort", "report_html"),
    output:
        html=report(
            f"{RESULTS}/report/registration_qc.html",
            caption="../report/registration_qc.rst",
            category="QC",
            subcategory="Registration",
        ),
    log:
        f"{LOGS}/qc_table/qc_table.log",
    conda:
        "../../envs/base.yaml"
    script:
        "../scripts/report_qc.py"


rule results_table:
    input:
        summary=f"{RESULTS}/metrics/summary.tsv",
        src=package_sources("report_html"),
    output:
        html=report(
            f"{RESULTS}/report/results.html",
            caption="../report/results.rst",
            category="Results",
            subcategory="Experiments",
        ),
    log:
        f"{LOGS}/results_table/results_table.log",
    conda:
        "../../envs/base.yaml"
    params:
        title="Results",
        tables={
            "summary": "Median balanced accuracy over the test folds (learned models and baselines)"
        },
    script:
        "../scripts/report_summary.py"


rule explanations_table:
    input:
        explain=f"{RESULTS}/explain/summary.tsv",
        src=package_sources("report_html"),
    output:
        html=report(
            f"{RESULTS}/report/explanations.html",
            caption="../report/explanations.rst",
            category="Explanations",
        ),
    log:
        f"{LOGS}/explanations_table/explanations_table.log",
    conda:
        "../../envs/base.yaml"
    params:
        title="Explanations",
        tables={"explain": "Attribution overlap with the tumour per explained model"},
    script:
        "../scripts/report_summary.py"


rule software_versions:
    input:
        pyproject=workflow.source_path("../../pyproject.toml"),
        src=package_sources("provenance", "report_html"),
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
    conda:
        "../../envs/base.yaml"
    params:
        config=config,
        # the running Snakemake, which the rule's own environment need not contain
        snakemake_version=__import__("snakemake").__version__,
    script:
        "../scripts/report_versions.py"
