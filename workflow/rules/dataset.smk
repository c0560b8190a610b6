# Dataset stage: with `dataset.source: synthetic` the embedded LUMIERE-shaped demo tree is generated
# under dataset.root; with `lumiere` the downloaded tree's CSV files and Imaging/ are plain inputs.


if config["dataset"]["source"] == "synthetic":

    rule synthetic_dataset:
        output:
            ratings=dataset_file("ratings_csv"),
            completeness=dataset_file("completeness_csv"),
            demographics=dataset_file("demographics_csv"),
            generator_truth=f"{DATA_ROOT}/generator_truth.tsv",
            imaging=directory(IMAGING),
            template_head=f"{SYNTHETIC_TEMPLATE}/head.nii.gz",
            template_mask=f"{SYNTHETIC_TEMPLATE}/brain_mask.nii.gz",
            truth=directory(SYNTHETIC_TRUTH),
        log:
            f"{LOGS}/synthetic_dataset/synthetic_dataset.log",
        benchmark:
            f"{BENCHMARKS}/synthetic_dataset/synthetic_dataset.tsv"
        conda:
            "../../envs/base.yaml"
        threads: 2
        resources:
            mem_mb=2000,
        params:
            settings=settings(synthetic=config["dataset"]["synthetic"]),
            code=script_code("synthetic_dataset"),
        script:
            "../scripts/synthetic_dataset.py"

    rule synthetic_new_patients:
        output:
            sheet=f"{NEW_PATIENTS}/sheet.tsv",
            generator_truth=f"{NEW_PATIENTS}/generator_truth.tsv",
            imaging=directory(f"{NEW_PATIENTS}/Imaging"),
            truth=directory(f"{NEW_PATIENTS}/truth"),
        log:
            f"{LOGS}/synthetic_new_patients/synthetic_new_patients.log",
        conda:
            "../../envs/base.yaml"
        params:
            settings=settings(
                synthetic=config["dataset"]["synthetic"],
                new_patients=config["dataset"]["new_patients"],
            ),
            code=script_code("synthetic_new_patients"),
        script:
            "../scripts/synthetic_new_patients.py"
