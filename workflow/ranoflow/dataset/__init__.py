"""Dataset stage (rules/dataset.smk): the embedded LUMIERE-shaped synthetic demo tree."""
