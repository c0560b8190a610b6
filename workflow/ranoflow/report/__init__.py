"""Report stage (rules/report.smk): cohort, QC, results and provenance pages of the Snakemake report."""
