"""Baseline stage (rules/baseline.smk): the rule-based RANO 2.0 response from tumour segmentations."""
