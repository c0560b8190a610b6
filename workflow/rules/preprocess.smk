# Preprocess stage: per study, a brain mask in the anchor's native space (skull_strip), then every
# modality rigidly to the anchor, one anchor->atlas registration and one resampling onto the common
# atlas grid (register). preprocess_manifest lists every paired study's status for later stages.


localrules:
    atlas_grid,
    preprocess_manifest,


rule atlas_grid:
    input:
        **template_files(),
        src=package_sources("image_io", "registration"),
    output:
        **ATLAS_GRID,
    log:
        f"{LOGS}/atlas_grid/atlas_grid.log",
    conda:
        "../../envs/preprocess.yaml"
    params:
        spacing_mm=PREPROCESS["spacing_mm"],
        margin_mm=PREPROCESS["margin_mm"],
        registration_mm=PREPROCESS["registration_mm"],
    script:
        "../scripts/atlas_grid.py"


rule skull_strip:
    input:
        unpack(skull_strip_inputs),
        src=package_sources(
            "image_io",
            "registration",
            "skull_strip",
            "preprocess_study",
            "preprocessing_qc",
        ),
    output:
        mask=f"{RESULTS}/skullstrip/{{patient}}/{{study}}/brain_mask.nii.gz",
        json=f"{RESULTS}/skullstrip/{{patient}}/{{study}}/skull_strip.json",
    log:
        f"{LOGS}/skull_strip/{{patient}}_{{study}}.log",
    benchmark:
        f"{BENCHMARKS}/skull_strip/{{patient}}_{{study}}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    threads: preprocess_threads()
    resources:
        mem_mb=PREPROCESS["mem_mb"],
    params:
        skull_strip=PREPROCESS["skull_strip"],
        anchor=PREPROCESS["anchor"],
        min_brain_ml=PREPROCESS["qc"]["min_brain_ml"],
        seed=PREPROCESS["seed"] if PREPROCESS["deterministic"] else None,
        on_error=PREPROCESS["on_error"],
    script:
        "../scripts/skull_strip.py"


rule register:
    input:
        unpack(register_inputs),
        src=package_sources(
            "image_io",
            "registration",
            "preprocessing_qc",
            "preprocess_study",
            "skull_strip",
        ),
    output:
        report(
            directory(f"{PREPROCESSED}/{{patient}}/{{study}}"),
            patterns=["{name}.png"],
            caption="../report/registration_qc_image.rst",
            category="QC",
            subcategory="{patient}",
            labels={"patient": "{patient}", "study": "{study}"},
        ),
    log:
        f"{LOGS}/register/{{patient}}_{{study}}.log",
    benchmark:
        f"{BENCHMARKS}/register/{{patient}}_{{study}}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    threads: preprocess_threads()
    resources:
        mem_mb=PREPROCESS["mem_mb"],
    params:
        input=PREPROCESS["input"],
        atlas_transform=PREPROCESS["atlas_transform"],
        registration_mm=PREPROCESS["registration_mm"],
        n4=PREPROCESS["n4"],
        qc=PREPROCESS["qc"],
        segmentation_space=PREPROCESS["segmentation"]["space"],
        segmentation_source=segmentation_source,
        seed=PREPROCESS["seed"] if PREPROCESS["deterministic"] else None,
        on_error=PREPROCESS["on_error"],
    script:
        "../scripts/register.py"


rule preprocess_manifest:
    input:
        dirs=preprocessed_dirs,
        src=package_sources("preprocessing_qc"),
    output:
        qc=f"{RESULTS}/qc/registration.tsv",
        manifest=f"{PREPROCESSED}/manifest.tsv",
    log:
        f"{LOGS}/preprocess_manifest/preprocess_manifest.log",
    conda:
        "../../envs/preprocess.yaml"
    params:
        outlier_mad=PREPROCESS["qc"]["outlier_mad"],
    script:
        "../scripts/preprocess_manifest.py"
