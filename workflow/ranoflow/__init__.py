"""RANO treatment-response workflow: the logic behind the Snakemake rules."""

CLASSES: tuple[str, ...] = ("CR", "PR", "SD", "PD")
MODALITIES: tuple[str, ...] = ("CT1", "T1", "T2", "FLAIR")
