# Train stage: the tensor store (every paired study once at the training grid, shared by every
# experiment), self-supervised pretraining per task and fold, then one train job per experiment and fold
# (GPU-resourced on a cluster). Every setting reaches the scripts as params (the resolved experiment or
# task as one dict); the store's jobs get exactly the grid settings.


rule tensor_grid:
    input:
        atlas_mask=ATLAS_GRID["brain_mask"],
    output:
        TENSOR_GRID,
    log:
        f"{LOGS}/tensor_grid/tensor_grid.log",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        settings=settings(**TENSOR_GRID_SETTINGS),
        code=script_code("tensor_grid"),
    script:
        "../scripts/tensor_grid.py"


if PREPROCESS["batch"] == "patient":

    rule patient_tensors:
        input:
            patient=PATIENT_DIR,
            grid=TENSOR_GRID,
        output:
            directory(PATIENT_TENSORS),
        log:
            f"{LOGS}/patient_tensors/{{patient}}.log",
        benchmark:
            f"{BENCHMARKS}/patient_tensors/{{patient}}.tsv"
        conda:
            "../../envs/base.yaml"
        threads: 1
        resources:
            mem_mb=config["tensor_store"]["mem_mb"],
        params:
            settings=settings(**TENSOR_GRID_SETTINGS),
            code=script_code("patient_tensors"),
        script:
            "../scripts/patient_tensors.py"

else:

    rule study_tensors:
        input:
            study=STUDY_DIR,
            grid=TENSOR_GRID,
        output:
            images=STUDY_TENSORS,
            mask=STUDY_TENSOR_MASK,
        log:
            f"{LOGS}/study_tensors/{{patient}}_{{study}}.log",
        benchmark:
            f"{BENCHMARKS}/study_tensors/{{patient}}_{{study}}.tsv"
        conda:
            "../../envs/base.yaml"
        threads: 1
        resources:
            mem_mb=config["tensor_store"]["mem_mb"],
        params:
            settings=settings(**TENSOR_GRID_SETTINGS),
            code=script_code("study_tensors"),
        script:
            "../scripts/study_tensors.py"


rule tensor_set:
    input:
        store_set_files,
    output:
        STORE_SET,
    log:
        f"{LOGS}/tensor_set/{{references}}.log",
    wildcard_constraints:
        references=r"[a-z]+(_[a-z]+)*",
    localrule: True
    conda:
        "../../envs/base.yaml"
    params:
        code=script_code("tensor_set"),
    script:
        "../scripts/tensor_set.py"


rule pretrain:
    input:
        pairs=PAIRS,
        folds=FOLDS_JSON,
        manifest=MANIFEST,
        grid=TENSOR_GRID,
        tensors=task_store_set,
    output:
        weights=f"{PRETRAINED_DIR}/backbone.pt",
        history=f"{PRETRAINED_DIR}/history.tsv",
        summary=f"{PRETRAINED_DIR}/pretrain.json",
    log:
        f"{LOGS}/pretrain/{{task}}/fold_{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/pretrain/{{task}}/fold_{{fold}}.tsv"
    wildcard_constraints:
        task="|".join(map(re.escape, PRETEXT_TASKS)) or "no-task",
    # resumes from its per-epoch checkpoint when restarted (Slurm time limit, preemption)
    retries: 1
    conda:
        "../../envs/torch.yaml"
    threads: config["resources"]["pretrain"]["threads"]
    resources:
        gpu=config["resources"]["pretrain"]["gpu"],
        runtime=config["resources"]["pretrain"]["runtime"],
        mem_mb=config["resources"]["pretrain"]["mem_mb"],
    params:
        settings=settings(
            task=lambda wildcards: PRETEXT_TASKS[wildcards.task],
            store_load=config["tensor_store"]["load"],
        ),
        code=script_code("pretrain"),
    script:
        "../scripts/pretrain.py"


rule train:
    input:
        pairs=PAIRS,
        # lists every study an experiment reads (current, previous and the references of all
        # experiments: paired_studies), so their preprocessing runs before any train job
        manifest=MANIFEST,
        folds=FOLDS_JSON,
        pretrained=pretrained_weights,
        grid=TENSOR_GRID,
        # the listing of the store files of every study the experiment reads (current and its references)
        tensors=experiment_store_set,
        # each study's enhancing-tumour volume: the targets of training.volume_loss (where set)
        volumes=volume_targets,
    output:
        model=f"{MODEL_DIR}/model.pt",
        predictions=f"{MODEL_DIR}/predictions.tsv",
        metrics=f"{MODEL_DIR}/metrics.json",
        history=f"{MODEL_DIR}/history.tsv",
        metadata=f"{MODEL_DIR}/metadata.json",
    log:
        f"{LOGS}/train/{{experiment}}/fold_{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{experiment}}/fold_{{fold}}.tsv"
    # resumes from its per-epoch checkpoint when restarted (Slurm time limit, preemption)
    retries: 1
    conda:
        "../../envs/torch.yaml"
    threads: config["resources"]["train"]["threads"]
    resources:
        gpu=config["resources"]["train"]["gpu"],
        runtime=config["resources"]["train"]["runtime"],
        mem_mb=config["resources"]["train"]["mem_mb"],
    params:
        settings=settings(
            experiment=train_run_settings,
            store_load=config["tensor_store"]["load"],
        ),
        code=script_code("train"),
    script:
        "../scripts/train.py"


# Each further seed of training.seeds: the same job in its own folder, a separate (GPU) job on a cluster.
use rule train as train_seed with:
    output:
        model=f"{SEED_MODEL_DIR}/model.pt",
        predictions=f"{SEED_MODEL_DIR}/predictions.tsv",
        metrics=f"{SEED_MODEL_DIR}/metrics.json",
        history=f"{SEED_MODEL_DIR}/history.tsv",
        metadata=f"{SEED_MODEL_DIR}/metadata.json",
    log:
        f"{LOGS}/train/{{experiment}}/fold_{{fold}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{experiment}}/fold_{{fold}}_seed{{seed}}.tsv"
