"""Explain stage (rules/explain.smk): attribution maps of trained models, scored against the tumour."""
