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
        code=script_code("index"),
    script:
        "../scripts/index.py"


checkpoint pairs:
    input:
        studies=STUDIES,
        orphans=ORPHANS,
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
        ),
        code=script_code("pairs"),
    script:
        "../scripts/pairs.py"


rule folds:
    input:
        pairs=PAIRS,
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
