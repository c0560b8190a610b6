# Index stage: read the LUMIERE tree as released, list the scorable (current, reference) pairs and
# why every other study is left out, then split the pairs into cross-validation folds.


rule index:
    input:
        imaging=IMAGING,
        ratings=dataset_file("ratings_csv"),
        completeness=dataset_file("completeness_csv"),
    output:
        studies=STUDIES,
        orphans=ORPHANS,
    log:
        f"{LOGS}/index/index.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(modalities=config["index"]["modalities"]),
        listing=IMAGING_LISTING,
        code=script_code("index"),
    script:
        "../scripts/index.py"


rule study_volumes:
    input:
        studies=STUDIES,
    output:
        volumes=STUDY_VOLUMES,
    log:
        f"{LOGS}/study_volumes/study_volumes.log",
    benchmark:
        f"{BENCHMARKS}/study_volumes/study_volumes.tsv"
    conda:
        "../../envs/base.yaml"
    params:
        # one segmentation choice for the whole workflow: the baseline's
        settings=settings(
            source=config["baseline"]["source"], volumes=config["baseline"]["volumes"]
        ),
        code=script_code("study_volumes"),
    script:
        "../scripts/study_volumes.py"


checkpoint pairs:
    input:
        studies=STUDIES,
        orphans=ORPHANS,
        volumes=STUDY_VOLUMES,
        demographics=dataset_file("demographics_csv"),
    output:
        pairs=PAIRS,
        excluded=EXCLUDED,
    log:
        f"{LOGS}/pairs/pairs.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(
            reference=config["index"]["reference"],
            modalities=config["index"]["modalities"],
            exclude_less_than_3_months=config["index"]["exclude_less_than_3_months"],
            exclude_rationales=config["index"]["exclude_rationales"],
            pair_across_gaps=config["index"]["pair_across_gaps"],
        ),
        code=script_code("pairs"),
    script:
        "../scripts/pairs.py"


rule folds:
    input:
        pairs=checked_pairs,
    output:
        folds=FOLDS_JSON,
    log:
        f"{LOGS}/folds/folds.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(folds=config["folds"]),
        code=script_code("folds"),
    script:
        "../scripts/folds.py"
