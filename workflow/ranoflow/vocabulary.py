"""The words every stage shares: RANO classes, MRI modalities and the clinical covariates.

Orders are fixed here once: class indices of the networks, channel order of the inputs, and the one-hot
columns of the clinical vector all follow these tuples.
"""

from __future__ import annotations

# RANO response classes, in the order of the networks' outputs and every table's columns.
CLASSES: tuple[str, ...] = ("CR", "PR", "SD", "PD")

# The four structural MRI sequences of a LUMIERE study, in channel order.
MODALITIES: tuple[str, ...] = ("CT1", "T1", "T2", "FLAIR")

# Studies an experiment can compare the current study with (columns of pairs.tsv), in channel order:
# the study right before, the one chosen by `index: reference`, the post-treatment baseline and the nadir.
REFERENCES: tuple[str, ...] = ("previous", "reference", "baseline", "nadir")

# Patient covariates of LUMIERE-Demographics_Pathology.csv, as normalised by the index stage.
DEMOGRAPHIC_FIELDS: tuple[str, ...] = ("age", "sex", "idh", "mgmt")
# Clinical inputs an experiment may use: the covariates, the interval between the two studies (weeks) and the
# rating's LessThan3Months flag (the current study lies within 12 weeks of the end of radiotherapy, where RANO
# reads growth as possible pseudo-progression; the rule baseline reads it too).
CLINICAL_FIELDS: tuple[str, ...] = (*DEMOGRAPHIC_FIELDS, "weeks_between", "less_than_3_months")
# Clinical fields that are 0/1 flags (not scaled).
FLAG_FIELDS: tuple[str, ...] = ("less_than_3_months",)
# Normalised values of the categorical covariates ('' means unknown), in one-hot column order.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "sex": ("male", "female"),
    "idh": ("mutant", "wildtype"),
    "mgmt": ("methylated", "unmethylated"),
}
