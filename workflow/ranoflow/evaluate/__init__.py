"""Evaluate stage (rules/evaluate.smk): metrics per experiment over folds, baselines, the summary table."""
