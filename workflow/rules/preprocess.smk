# Preprocess stage: per study, a brain mask in the anchor's native space, then every modality rigidly
# to the anchor, one anchor->atlas registration and one resampling onto the common atlas grid
# (register). The brain mask is computed by the register job itself, or by a skull_strip job of its
# own with preprocessing.skull_strip.separate_job; with preprocessing.batch: patient, register_patient
# does a patient's studies in one job. preprocess_manifest lists every paired study's
# status for later stages.
# With preprocessing.template.source: dataset, dataset_template builds the atlas from the dataset's own
# atlas-space skull-stripped images first.


rule dataset_template:
    input:
        studies=STUDIES,
    output:
        **DATASET_TEMPLATE,
    log:
        f"{LOGS}/dataset_template/dataset_template.log",
    benchmark:
        f"{BENCHMARKS}/dataset_template/dataset_template.tsv"
    conda:
        "../../envs/base.yaml"
    resources:
        mem_mb=4000,
    params:
        settings=settings(modality=PREPROCESS["template"]["modality"]),
        code=script_code("dataset_template"),
    script:
        "../scripts/dataset_template.py"


rule atlas_grid:
    input:
        **template_files(),
    output:
        **ATLAS_GRID,
    log:
        f"{LOGS}/atlas_grid/atlas_grid.log",
    localrule: True
    conda:
        "../../envs/preprocess.yaml"
    params:
        settings=settings(
            spacing_mm=PREPROCESS["spacing_mm"],
            margin_mm=PREPROCESS["margin_mm"],
            registration_mm=PREPROCESS["registration_mm"],
        ),
        code=script_code("atlas_grid"),
    script:
        "../scripts/atlas_grid.py"


rule skull_strip:
    input:
        unpack(skull_strip_inputs),
    output:
        mask=f"{SKULLSTRIP_DIR}/brain_mask.nii.gz",
        json=f"{SKULLSTRIP_DIR}/skull_strip.json",
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
        settings=settings(
            skull_strip=PREPROCESS["skull_strip"],
            anchor=PREPROCESS["anchor"],
            min_brain_ml=PREPROCESS["qc"]["min_brain_ml"],
            seed=PREPROCESS["seed"] if PREPROCESS["deterministic"] else None,
            on_error=PREPROCESS["on_error"],
        ),
        code=script_code("skull_strip"),
    script:
        "../scripts/skull_strip.py"


rule register:
    input:
        unpack(register_inputs),
    output:
        report(
            directory(STUDY_DIR),
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
        settings=register_job_settings,
        code=script_code("register"),
    script:
        "../scripts/register.py"


# preprocessing.batch: patient. The same study directories as register's, all of a patient's paired
# studies in one process (one start-up and ANTs import per patient).
rule register_patient:
    input:
        unpack(register_patient_inputs),
    output:
        report(
            directory(PATIENT_DIR),
            patterns=["{study}/{name}.png"],
            caption="../report/registration_qc_image.rst",
            category="QC",
            subcategory="{patient}",
            labels={"patient": "{patient}", "study": "{study}"},
        ),
    log:
        f"{LOGS}/register_patient/{{patient}}.log",
    benchmark:
        f"{BENCHMARKS}/register_patient/{{patient}}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    threads: preprocess_threads()
    resources:
        mem_mb=PREPROCESS["mem_mb"],
    params:
        settings=register_patient_settings,
        code=script_code("register_patient"),
    script:
        "../scripts/register_patient.py"


rule preprocess_manifest:
    input:
        dirs=preprocessed_dirs,
    output:
        qc=REGISTRATION_QC,
        manifest=MANIFEST,
    log:
        f"{LOGS}/preprocess_manifest/preprocess_manifest.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(outlier_mad=PREPROCESS["qc"]["outlier_mad"]),
        code=script_code("preprocess_manifest"),
    script:
        "../scripts/preprocess_manifest.py"
