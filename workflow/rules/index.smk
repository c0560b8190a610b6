# Index stage: read the LUMIERE tree as released, list the scorable (current, reference) pairs and
# why every other study is left out, then split the pairs into cross-validation folds.


localrules:
    index,
    pairs,
    folds,


rule index:
    input:
        imaging=f"{DATA_ROOT}/Imaging",
        ratings=dataset_file("ratings_csv"),
        completeness=dataset_file("completeness_csv"),
        src=package_sources("__init__", "lumiere", "study_index"),
    output:
        studies=f"{RESULTS}/index/studies.tsv",
        orphans=f"{RESULTS}/index/orphan_ratings.tsv",
    log:
        f"{LOGS}/index/index.log",
    conda:
        "../../envs/base.yaml"
    params:
        modalities=config["index"]["modalities"],
    script:
        "../scripts/index.py"


checkpoint pairs:
    input:
        studies=f"{RESULTS}/index/studies.tsv",
        orphans=f"{RESULTS}/index/orphan_ratings.tsv",
        demographics=dataset_file("demographics_csv"),
        src=package_sources("__init__", "lumiere", "study_index", "pairs", "tables"),
    output:
        pairs=f"{RESULTS}/index/pairs.tsv",
        excluded=f"{RESULTS}/index/excluded.tsv",
    log:
        f"{LOGS}/pairs/pairs.log",
    conda:
        "../../envs/base.yaml"
    params:
        reference=config["index"]["reference"],
        modalities=config["index"]["modalities"],
        exclude_less_than_3_months=config["index"]["exclude_less_than_3_months"],
    script:
        "../scripts/pairs.py"


rule folds:
    input:
        pairs=f"{RESULTS}/index/pairs.tsv",
        src=package_sources("folds", "tables"),
    output:
        folds=f"{RESULTS}/splits/folds.json",
    log:
        f"{LOGS}/folds/folds.log",
    conda:
        "../../envs/base.yaml"
    params:
        folds=config["folds"],
    script:
        "../scripts/folds.py"
