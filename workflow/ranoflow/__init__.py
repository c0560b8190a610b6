"""RANO treatment-response workflow: the logic behind the Snakemake rules.

One subpackage per stage, named like its rule file in workflow/rules/: dataset, index, preprocess,
train, evaluate, baseline, explain, report. Shared by all stages: `vocabulary` (classes, modalities,
clinical fields), `lumiere` (names of the released dataset), `tables` (the workflow's TSV files),
`script_log` (logging of the rule scripts) and `code_hash` (which code a rule's job ran).
"""
