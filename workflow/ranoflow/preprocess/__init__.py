"""Preprocess stage (rules/preprocess.smk): skull strip, registration to the atlas grid, QC."""
