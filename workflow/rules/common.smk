import functools
import re
import sys
from pathlib import Path

import pandas as pd
import yaml
from snakemake.logging import logger
from snakemake.utils import validate

# ranoflow's pure-Python parts (no torch, MONAI or ANTs) are read at parse time.
WORKFLOW_DIR = Path(workflow.current_basedir).parent
sys.path.insert(0, str(WORKFLOW_DIR))
from ranoflow import tables
from ranoflow.code_hash import code_hash
from ranoflow.config_check import (
    config_problem,
    config_sources,
    demo_not_read,
    merged,
    settings_problem,
)
from ranoflow.dataset.guard import (
    DatasetRootError,
    check_dataset_root,
    output_inside_dataset,
)
from ranoflow.evaluate.ablations import reference_problem
from ranoflow.index.folds import cohort_problem
from ranoflow.index.listing import imaging_listing
from ranoflow.predict.sheet import SheetError, missing_references, read_sheet
from ranoflow.predict.sheet import study_images as sheet_study_images
from ranoflow.preprocess.settings import in_process_strip, register_settings
from ranoflow.report.provenance import pinned_requirements
from ranoflow.train.experiments import (
    grid_overrides,
    image_size_problems,
    sparse_experiments,
    resolve_experiments,
    resolve_pretext_task,
    to_plain,
)
from ranoflow.train.seeds import run_seeds, seed_run
from ranoflow.vocabulary import MODALITIES

DEMO_CONFIG = "config/config.yaml"
SCHEMA = WORKFLOW_DIR / "schemas" / "config.schema.yaml"


def stop_if(problem):
    """End the run with one line (no traceback, no schema dump) when the config has a problem."""
    if problem:
        logger.error(problem)
        sys.exit(1)


# The config: the --configfile files (else the demo's), then --config; checked against the schema.
_sources = config_sources(
    workflow.overwrite_configfiles,
    workflow.config_settings.config or {},
    (DEMO_CONFIG, config),
)
if demo_not_read(_sources, DEMO_CONFIG):
    logger.info(demo_not_read(_sources, DEMO_CONFIG))
config.clear()
config.update(merged(_sources))
_schema = yaml.safe_load(SCHEMA.read_text())
_problem = config_problem(config, _schema, _sources)
stop_if(_problem and f"{_problem} (schema: workflow/schemas/{SCHEMA.name})")
validate(config, str(SCHEMA), set_default=True)
stop_if(settings_problem(config, _sources))

# ---- paths shared by several stages: each defined once, here ----
RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
DATA_ROOT = config["dataset"]["root"]
try:
    check_dataset_root(config["dataset"]["source"], DATA_ROOT, RESULTS)
except DatasetRootError as error:
    stop_if(str(error))
stop_if(output_inside_dataset(config, _schema))
IMAGING = f"{DATA_ROOT}/Imaging"
# The index follows the tree (study folders, files, sizes), not only the Imaging/ folder's time stamp;
# the synthetic tree is an output of its own rule, which Snakemake already follows.
IMAGING_LISTING = (
    imaging_listing(IMAGING)
    if config["dataset"]["source"] == "lumiere"
    else "made by rule synthetic_dataset"
)
STUDIES = f"{RESULTS}/index/studies.tsv"
ORPHANS = f"{RESULTS}/index/orphan_ratings.tsv"
PAIRS = f"{RESULTS}/index/pairs.tsv"
STUDY_VOLUMES = f"{RESULTS}/index/study_volumes.tsv"
EXCLUDED = f"{RESULTS}/index/excluded.tsv"
FOLDS_JSON = f"{RESULTS}/splits/folds.json"
PREPROCESSED = f"{RESULTS}/preprocessed"
MANIFEST = f"{PREPROCESSED}/manifest.tsv"
REGISTRATION_QC = f"{RESULTS}/qc/registration.tsv"
MODEL_DIR = f"{RESULTS}/models/{{experiment}}/fold_{{fold}}"
# the runs of training.seeds other than training.seed (whose runs are MODEL_DIR)
SEED_MODEL_DIR = f"{RESULTS}/models/{{experiment}}/fold_{{fold}}_seed{{seed}}"
METRICS = f"{RESULTS}/metrics"
SUMMARY = f"{METRICS}/summary.tsv"
SUMMARY_FOLDS = f"{METRICS}/test_pairs_per_fold.tsv"
EXPERIMENT_PREDICTIONS = f"{METRICS}/predictions/{{experiment}}.tsv"
RANO_RULES_METRICS = f"{METRICS}/rano_rules.json"
RANO_RULES_PREDICTIONS = f"{RESULTS}/baseline/rano_rules_predictions.tsv"
RANO_RULES_PREVIOUS_METRICS = f"{METRICS}/rano_rules_previous.json"
RANO_RULES_PREVIOUS_PREDICTIONS = (
    f"{RESULTS}/baseline/rano_rules_previous_predictions.tsv"
)
RANO_EXPERT_METRICS = f"{METRICS}/rano_expert.json"
RANO_EXPERT_PREDICTIONS = f"{RESULTS}/baseline/rano_expert_predictions.tsv"
VOLUMES_GBM_METRICS = f"{METRICS}/volumes_gbm.json"
VOLUMES_GBM_PREDICTIONS = f"{RESULTS}/baseline/volumes_gbm_predictions.tsv"
STUDY_MEASURES = f"{RESULTS}/baseline/study_measures.tsv"
STUDY_LESIONS = f"{RESULTS}/baseline/study_lesions.npz"
STUDY_MEASURES_CACHE = f"{RESULTS}/baseline/study_measures_cache"
MISSING_SEGMENTATION = f"{RESULTS}/baseline/missing_segmentation.tsv"
IMAGE_MEASURES = f"{RESULTS}/baseline/image_measures.tsv"
IMAGE_LESIONS = f"{RESULTS}/baseline/image_lesions.npz"
IMAGE_MEASURES_CACHE = f"{RESULTS}/baseline/image_measures_cache"
RANO_EXPERT_IMAGES_METRICS = f"{METRICS}/rano_expert_images.json"
RANO_EXPERT_IMAGES_PREDICTIONS = (
    f"{RESULTS}/baseline/rano_expert_images_predictions.tsv"
)
RANO_EXPERT_IMAGES_MISSING = f"{RESULTS}/baseline/rano_expert_images_missing.tsv"
IMAGE_RULE = config["baseline"]["image_rule"]["enabled"]
EXPLAIN_DIR = f"{RESULTS}/explain/{{experiment}}/fold_{{fold}}"
EXPLAIN_SUMMARY = f"{RESULTS}/explain/summary.tsv"
EXPORT_DIR = f"{RESULTS}/export/{{experiment}}"

EXPERIMENTS = list(config["experiments"])
FOLDS = list(range(config["folds"]["k"]))


wildcard_constraints:
    patient=r"Patient-\d+",
    study=r"week-\d+(-\d+)?",
    fold=r"\d+",
    seed=r"\d+",
    modality="|".join(MODALITIES),
    experiment="|".join(map(re.escape, EXPERIMENTS)) or "no-experiment",
    name=r"[A-Za-z0-9_.-]+",
    key=r"[A-Za-z0-9_.-]+",


def script_code(script):
    """Content hash of a rule's script and the ranoflow modules it imports, as the rule's `code` param:
    the job reruns when that code changes, not when files are only moved, cloned or touched.
    """
    return code_hash(
        WORKFLOW_DIR / "scripts" / f"{script}.py", WORKFLOW_DIR / "ranoflow"
    )


def ordered(value):
    """`value` with every mapping's keys sorted, so reordering config keys reruns nothing."""
    if isinstance(value, dict):
        return {key: ordered(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [ordered(item) for item in value]
    return value


def settings(**values):
    """A rule's config values as its one `settings` param. Snakemake compares params as a set of
    values without their names, so two separate params could swap values unnoticed; one dict keeps
    each value under its name. A callable value is a function of the job's wildcards."""
    if not any(callable(value) for value in values.values()):
        return ordered(values)
    return lambda wildcards: ordered(
        {k: v(wildcards) if callable(v) else v for k, v in values.items()}
    )


def dataset_file(key):
    return f"{DATA_ROOT}/{config['dataset'][key]}"


# ---- dataset stage (synthetic demo) ----
# Written by the synthetic_dataset job outside the LUMIERE tree: whole-head template + brain mask in the
# generator's atlas space, and per study the true brain mask and tumour labels on the CT1 grid.
SYNTHETIC_TEMPLATE = f"{RESULTS}/demo/template"
SYNTHETIC_TRUTH = f"{RESULTS}/demo/truth"


@functools.cache
def _read_tsv(path, mtime):
    return tables.read_tsv(path)


def read_tsv(path):
    """A TSV read once per parse (keyed by mtime), every column as text."""
    return _read_tsv(str(path), Path(path).stat().st_mtime)


# Checked once per pairs.tsv, by the jobs that need them: the DAG update after the `pairs` checkpoint
# evaluates these input functions before any preprocessing job starts. Neither is a param of `pairs`, so
# editing experiments or folds.k reruns no index rule, and a target that needs neither (preprocessing
# only) is not refused.
@functools.cache
def _check_cohort(path, mtime):
    folds = config["folds"]
    stop_if(cohort_problem(_read_tsv(path, mtime), folds["protocol"], folds["k"]))


@functools.cache
def _check_experiments(path, mtime):
    pairs = _read_tsv(path, mtime)
    for line in sparse_experiments(pairs.to_dict("records"), RESOLVED_EXPERIMENTS):
        if not config["index"]["allow_sparse_experiments"]:
            stop_if(f"{line} (refused)")
        logger.warning(line)


def scorable_pairs():
    """pairs.tsv, known once the `pairs` checkpoint has run."""
    return read_tsv(checkpoints.pairs.get().output.pairs)


def checked_pairs(wildcards):
    """pairs.tsv for the folds, once the cohort fits folds.k (else a one-line stop)."""
    path = checkpoints.pairs.get().output.pairs
    _check_cohort(str(path), Path(path).stat().st_mtime)
    return path


def paired_studies():
    """(patient, study) of every study a scorable pair names: current, reference, previous, baseline, nadir."""
    pairs = scorable_pairs()
    roles = ["current", "reference", "previous", "baseline", "nadir"]
    studies = pd.concat(
        [
            pairs[["patient", role]].set_axis(["patient", "study"], axis=1)
            for role in roles
        ]
    )
    studies = studies[studies["study"] != ""].drop_duplicates()
    return sorted(studies.itertuples(index=False, name=None))


# ---- preprocess stage: inputs of skull_strip / register / preprocess_manifest ----
PREPROCESS = config["preprocessing"]
ATLAS_GRID = {
    name: f"{PREPROCESSED}/atlas/{name}.nii.gz"
    for name in ("brain", "brain_mask", "registration_brain")
}
SKULLSTRIP_DIR = f"{RESULTS}/skullstrip/{{patient}}/{{study}}"
STUDY_DIR = f"{PREPROCESSED}/{{patient}}/{{study}}"
PATIENT_DIR = f"{PREPROCESSED}/{{patient}}"


def preprocess_threads():
    """Deterministic ANTs needs one ITK thread (metric sums are split per thread)."""
    return 1 if PREPROCESS["deterministic"] else PREPROCESS["threads"]


@functools.cache
def _studies_by_key(path, mtime):
    # One dict lookup per job: filtering the table per call dominated `snakemake -n` on LUMIERE.
    return {
        (r["patient"], r["study"]): r for r in _read_tsv(path, mtime).to_dict("records")
    }


def study_row(wildcards):
    """The studies.tsv row of {patient}/{study} as a dict (studies.tsv exists once `pairs` has run)."""
    scorable_pairs()
    row = _studies_by_key(STUDIES, Path(STUDIES).stat().st_mtime).get(
        (wildcards.patient, wildcards.study)
    )
    if row is None:
        raise ValueError(f"{wildcards.patient}/{wildcards.study} is not in {STUDIES}")
    return row


def study_images(wildcards):
    """{modality: path} of the images a study is preprocessed from (raw native, or DeepBraTumIA's
    atlas-space skull_strip images for input: deepbratumia)."""
    row = study_row(wildcards)
    present = [m for m in MODALITIES if row[f"has_{m}"] == "1" and row[f"path_{m}"]]
    if PREPROCESS["input"] == "deepbratumia":
        folder = row["dbt_skullstrip_dir"]
        candidates = (
            {m: f"{folder}/{m.lower()}_skull_strip.nii.gz" for m in present}
            if folder
            else {}
        )
        return {m: p for m, p in candidates.items() if Path(p).is_file()}
    return {m: row[f"path_{m}"] for m in present}


def study_segmentation(wildcards):
    """{"seg": path} of the first available segmentation in preprocessing.segmentation.order."""
    row = study_row(wildcards)
    if PREPROCESS["input"] == "deepbratumia":
        path = row["seg_deepbratumia"]
        return {"seg": path} if path else {}
    seg = PREPROCESS["segmentation"]
    folder = Path(IMAGING) / wildcards.patient / wildcards.study
    for source in seg["order"]:
        path = (
            row["seg_hdglio"]
            if source == "hdglio"
            else str(folder / seg["deepbratumia_native"])
        )
        if path and Path(path).is_file():
            return {"seg": path}
    return {}


def segmentation_source(wildcards):
    path = study_segmentation(wildcards).get("seg", "")
    return (
        "hdglio"
        if path and path == study_row(wildcards)["seg_hdglio"]
        else "deepbratumia"
    )


DATASET_TEMPLATE = {
    "template_head": f"{PREPROCESSED}/atlas/dataset_template/head.nii.gz",
    "template_mask": f"{PREPROCESSED}/atlas/dataset_template/brain_mask.nii.gz",
}


def template_files():
    """The whole-head template and its brain mask: files of the config, or built from the dataset."""
    if PREPROCESS["template"]["source"] == "dataset":
        return DATASET_TEMPLATE
    return {
        "template_head": PREPROCESS["template"]["head"],
        "template_mask": PREPROCESS["template"]["brain_mask"],
    }


def skull_strip_inputs(wildcards):
    inputs = {f"image_{m}": p for m, p in study_images(wildcards).items()}
    if PREPROCESS["skull_strip"]["method"] == "atlas":
        inputs.update(template_files())
    return inputs


def longitudinal_reference(wildcards):
    """The patient's first paired study when preprocessing.longitudinal is on (None for itself)."""
    if not PREPROCESS["longitudinal"] or PREPROCESS["input"] == "deepbratumia":
        return None
    studies = read_tsv(STUDIES)
    paired = {s for p, s in paired_studies() if p == wildcards.patient}
    mine = studies[
        (studies["patient"] == wildcards.patient) & studies["study"].isin(paired)
    ]
    first = mine.sort_values("order", key=lambda o: o.astype(int))["study"].iloc[0]
    return None if first == wildcards.study else first


def register_inputs(wildcards):
    inputs = {f"image_{m}": p for m, p in study_images(wildcards).items()}
    inputs.update(study_segmentation(wildcards))
    inputs.update(ATLAS_GRID)
    if in_process_strip(PREPROCESS):
        if PREPROCESS["skull_strip"]["method"] == "atlas":
            inputs.update(template_files())
    elif PREPROCESS["input"] == "raw":
        skullstrip = SKULLSTRIP_DIR.format(**wildcards)
        inputs["mask"] = f"{skullstrip}/brain_mask.nii.gz"
        inputs["strip"] = f"{skullstrip}/skull_strip.json"
    reference = longitudinal_reference(wildcards)
    if reference:
        inputs["reference"] = STUDY_DIR.format(
            patient=wildcards.patient, study=reference
        )
    return inputs


def register_job_settings(wildcards):
    return ordered(register_settings(PREPROCESS, segmentation_source(wildcards)))


def preprocessed_dirs(wildcards):
    """Every paired study's preprocessed directory (input of preprocess_manifest): one per study, or
    with preprocessing.batch: patient one per patient holding its studies' directories.
    """
    if PREPROCESS["batch"] == "patient":
        patients = sorted({p for p, _ in paired_studies()})
        return [PATIENT_DIR.format(patient=p) for p in patients]
    return [STUDY_DIR.format(patient=p, study=s) for p, s in paired_studies()]


class StudyWildcards(dict):
    """{patient, study} of one study of a register_patient job, as the per-study input functions read
    wildcards (attributes and ** both work)."""

    __getattr__ = dict.__getitem__


def patient_studies(wildcards):
    """The patient's paired studies as StudyWildcards, in study order (a longitudinal reference first)."""
    paired = {s for p, s in paired_studies() if p == wildcards.patient}
    order = {
        (r["patient"], r["study"]): int(r["order"])
        for r in _studies_by_key(STUDIES, Path(STUDIES).stat().st_mtime).values()
    }
    studies = sorted(paired, key=lambda s: order[(wildcards.patient, s)])
    return [StudyWildcards(patient=wildcards.patient, study=s) for s in studies]


def register_patient_inputs(wildcards):
    """register_inputs of each of the patient's studies, named <study>/<name>; the atlas grid and the
    template once. A longitudinal reference is a study of the same job, so not an input.
    """
    inputs = {}
    for study in patient_studies(wildcards):
        for name, path in register_inputs(study).items():
            shared = name in ATLAS_GRID or name in DATASET_TEMPLATE
            if name != "reference":
                inputs[name if shared else f"{study.study}/{name}"] = path
    return inputs


def register_patient_settings(wildcards):
    """Each study's register settings and longitudinal reference, in processing order."""
    studies = [
        {
            "study": study.study,
            "settings": register_job_settings(study),
            "reference": longitudinal_reference(study),
        }
        for study in patient_studies(wildcards)
    ]
    return {"seed": studies[0]["settings"]["seed"], "studies": studies}


# ---- train stage: resolved experiments and pretext tasks, inputs of pretrain/train ----
TRAINING = to_plain(config["training"])
RESOLVED_EXPERIMENTS = resolve_experiments(to_plain(config["experiments"]), TRAINING)
PRETEXT_TASKS = {
    name: resolve_pretext_task(name, TRAINING) for name in TRAINING["pretext_tasks"]
}
for _line in image_size_problems(
    to_plain(config["experiments"]),
    RESOLVED_EXPERIMENTS,
    TRAINING["pretext_tasks"],
    PRETEXT_TASKS,
)[:1]:
    stop_if(_line)
PRETRAINED_DIR = f"{RESULTS}/pretrained/{{task}}/fold_{{fold}}"
stop_if("; ".join(grid_overrides({**RESOLVED_EXPERIMENTS, **PRETEXT_TASKS}, TRAINING)))

# The tensor store: every paired study once at the training grid, read by pretrain, train and explain.
TENSORS = f"{RESULTS}/tensors"
TENSOR_GRID = f"{TENSORS}/grid.json"
STORE_SET = f"{TENSORS}/sets/{{references}}.tsv"
STUDY_TENSORS = f"{TENSORS}/{{patient}}/{{study}}.npy"
STUDY_TENSOR_MASK = f"{TENSORS}/{{patient}}/{{study}}_mask.npy"
# with preprocessing.batch: patient, one job writes a patient's study files (as it preprocesses them)
PATIENT_TENSORS = f"{TENSORS}/{{patient}}"
# the store's settings: exactly the grid, so an edit of anything else reruns no store job
TENSOR_GRID_SETTINGS = {
    "image_size": TRAINING["image_size"],
    "fit": TRAINING["fit"],
    "margin_voxels": config["tensor_store"]["margin_voxels"],
}


@functools.cache
def _store_files(roles, path, mtime):
    # once per set of studies read (and pairs.tsv): an input function costs a dict lookup per job
    pairs = _read_tsv(path, mtime)
    studies = pd.concat(
        [
            pairs[["patient", role]].set_axis(["patient", "study"], axis=1)
            for role in roles
        ]
    )
    studies = studies[studies["study"] != ""].drop_duplicates()
    if PREPROCESS["batch"] == "patient":
        return sorted({PATIENT_TENSORS.format(patient=p) for p in studies["patient"]})
    # the images file only: its study_tensors job writes the mask beside it (half the inputs to plan)
    return [
        STUDY_TENSORS.format(patient=patient, study=study)
        for patient, study in sorted(studies.itertuples(index=False, name=None))
    ]


def store_files(references):
    """Store files of every study of a scorable pair in the roles current + `references`."""
    path = checkpoints.pairs.get().output.pairs
    # every train and pretrain job reads a store set
    _check_experiments(str(path), Path(path).stat().st_mtime)
    roles = ("current", *references)
    return _store_files(roles, str(path), Path(path).stat().st_mtime)


def store_set(references):
    """The listing of the store files one set of reference studies reads: a train job's one store input,
    so planning a grid of many jobs handles each set's hundreds of store files once, not once per job.
    """
    return STORE_SET.format(references="_".join(references))


def store_set_files(wildcards):
    return store_files(tuple(wildcards.references.split("_")))


def experiment_store_set(wildcards):
    return store_set(RESOLVED_EXPERIMENTS[wildcards.experiment]["references"])


def experiment_runs(wildcards):
    """The folders of an experiment's train runs: every fold with training.seed, then with each further seed."""
    seeds = run_seeds(RESOLVED_EXPERIMENTS[wildcards.experiment])
    runs = [MODEL_DIR.format(experiment=wildcards.experiment, fold=f) for f in FOLDS]
    for seed in seeds[1:]:
        runs += [
            SEED_MODEL_DIR.format(experiment=wildcards.experiment, fold=f, seed=seed)
            for f in FOLDS
        ]
    return runs


def run_files(name):
    return lambda wildcards: [f"{run}/{name}" for run in experiment_runs(wildcards)]


def train_run_settings(wildcards):
    """The experiment as this train job runs it: the seed of its folder, the list of seeds left out."""
    experiment = RESOLVED_EXPERIMENTS[wildcards.experiment]
    seed = (
        int(wildcards.seed) if hasattr(wildcards, "seed") else run_seeds(experiment)[0]
    )
    return seed_run(experiment, seed)


def task_store_set(wildcards):
    return store_set(("previous",))


def volume_targets(wildcards):
    """study_volumes.tsv for an experiment trained with training.volume_loss; none for the others, so a new
    segmentation retrains only the experiments that read it."""
    if RESOLVED_EXPERIMENTS[wildcards.experiment]["training"]["volume_loss"]:
        return STUDY_VOLUMES
    return []


def pretrained_weights(wildcards):
    """The weights a train job starts from: its fold's pretext-task output, a weights file, or none."""
    pretraining = RESOLVED_EXPERIMENTS[wildcards.experiment]["pretraining"]
    if pretraining["kind"] == "task":
        folder = PRETRAINED_DIR.format(task=pretraining["task"], fold=wildcards.fold)
        return f"{folder}/backbone.pt"
    if pretraining["kind"] == "file":
        return pretraining["path"]
    return []


# ---- predict stage ----
PREDICT = config["predict"]
PREDICT_DIR = f"{RESULTS}/predict/{{name}}"
PREDICT_STUDY_DIR = f"{PREDICT_DIR}/preprocessed/{{key}}"
NEW_PATIENTS = f"{RESULTS}/demo/new_patients"


@functools.cache
def predict_sheet(name):
    """The sample sheet `predict.sheets.<name>`, checked (one line naming the file and row otherwise)."""
    try:
        return read_sheet(PREDICT["sheets"][name], PREPROCESS["input"])
    except SheetError as error:
        stop_if(f"{error} (predict.sheets.{name})")


def predict_problem():
    """Why the configured sheets cannot be rated, before any job runs ('' when they can)."""
    if not PREDICT["sheets"]:
        return ""
    experiment = PREDICT["experiment"]
    if experiment not in EXPERIMENTS:
        return f"predict.experiment is {experiment!r}: name one of the experiments {EXPERIMENTS}"
    if PREPROCESS["longitudinal"]:
        return "predict: preprocessing.longitudinal registers each study to its patient's first study; new follow-ups are registered to the atlas only, so set longitudinal: false to rate them"
    references = RESOLVED_EXPERIMENTS[experiment].get("references", ["previous"])
    for name, path in PREDICT["sheets"].items():
        problem = missing_references(
            predict_sheet(name), references, f"{path} (predict.sheets.{name})"
        )
        if problem:
            return f"{problem}, or choose another predict.experiment"
    return ""


def predict_study(wildcards):
    """The sheet's study folder of {name}/{key}."""
    sheet = predict_sheet(wildcards.name)
    folders = sheet.loc[sheet["key"] == wildcards.key, "folder"]
    if folders.empty:
        raise ValueError(
            f"{wildcards.key} is not a study of predict.sheets.{wildcards.name}"
        )
    return folders.iloc[0]


def predict_register_inputs(wildcards):
    images = sheet_study_images(predict_study(wildcards), PREPROCESS["input"])
    inputs = {f"image_{m}": path for m, path in images.items()}
    inputs.update(ATLAS_GRID)
    if PREPROCESS["input"] == "raw" and PREPROCESS["skull_strip"]["method"] == "atlas":
        inputs.update(template_files())
    return inputs


def predict_register_settings():
    """The cohort's register settings, with the skull strip always in the job (no skull_strip job here)."""
    strip = {**PREPROCESS["skull_strip"], "separate_job": False}
    return ordered(register_settings({**PREPROCESS, "skull_strip": strip}, "none"))


def predict_study_dirs(wildcards):
    keys = sorted(set(predict_sheet(wildcards.name)["key"]))
    return [PREDICT_STUDY_DIR.format(name=wildcards.name, key=key) for key in keys]


def predict_output():
    return expand(f"{PREDICT_DIR}/rating.tsv", name=list(PREDICT["sheets"]))


def new_patients_output():
    if (
        config["dataset"]["source"] != "synthetic"
        or not config["dataset"]["new_patients"]
    ):
        return []
    return [f"{NEW_PATIENTS}/sheet.tsv"]


def export_preprocessing():
    """How the exported model's training images were made: the register job's settings (less the
    per-study segmentation source) and the atlas grid's."""
    register = register_settings(PREPROCESS)
    register.pop("segmentation_source")
    grid = ("spacing_mm", "margin_mm", "registration_mm", "template")
    return {"register": register, **{key: PREPROCESS[key] for key in grid}}


def export_output():
    return expand(f"{EXPORT_DIR}/model.pt2", experiment=EXPERIMENTS)


# ---- evaluate stage ----
def summary_baselines():
    """Rows of summary.tsv made by other stages: {metrics JSON (ranoflow.evaluate.experiment_metrics
    format): predictions TSV (id, label, predicted, optional prob_*)}; every row is scored on the pairs
    that all rows scored."""
    return {
        RANO_RULES_METRICS: RANO_RULES_PREDICTIONS,
        RANO_RULES_PREVIOUS_METRICS: RANO_RULES_PREVIOUS_PREDICTIONS,
        RANO_EXPERT_METRICS: RANO_EXPERT_PREDICTIONS,
        VOLUMES_GBM_METRICS: VOLUMES_GBM_PREDICTIONS,
        **(
            {RANO_EXPERT_IMAGES_METRICS: RANO_EXPERT_IMAGES_PREDICTIONS}
            if IMAGE_RULE
            else {}
        ),
    }


RANKING_PLOT = f"{RESULTS}/plots/ranking.png"
CONFUSION_PLOT = f"{RESULTS}/plots/confusion_matrices.png"
ABLATION_PLOT = f"{RESULTS}/plots/ablations.png"
TRAINING_CURVES = f"{RESULTS}/plots/training/{{experiment}}.png"


def evaluate_output():
    return [
        SUMMARY,
        f"{RESULTS}/plots/balanced_accuracy.png",
        RANKING_PLOT,
        CONFUSION_PLOT,
        *expand(TRAINING_CURVES, experiment=EXPERIMENTS),
    ]


# ---- baseline and report stages ----
FRONT_PAGE = f"{RESULTS}/report/front_page.html"
# the per-class table as a fragment that workflow/report/workflow.rst embeds in the report's landing text
LANDING_TABLE = f"{RESULTS}/report/landing_table.html"


def baseline_and_report_output():
    """Rule-based RANO baseline and the tables shown by `snakemake --report`."""
    return [
        RANO_RULES_PREDICTIONS,
        RANO_RULES_METRICS,
        RANO_RULES_PREVIOUS_PREDICTIONS,
        RANO_RULES_PREVIOUS_METRICS,
        RANO_EXPERT_PREDICTIONS,
        RANO_EXPERT_METRICS,
        VOLUMES_GBM_PREDICTIONS,
        VOLUMES_GBM_METRICS,
        f"{RESULTS}/plots/rano_rules/rano_rules.png",
        *(
            [
                RANO_EXPERT_IMAGES_PREDICTIONS,
                RANO_EXPERT_IMAGES_METRICS,
                f"{RESULTS}/plots/rano_expert_images/rano_expert_images.png",
            ]
            if IMAGE_RULE
            else []
        ),
        FRONT_PAGE,
        f"{RESULTS}/report/cohort.html",
        f"{RESULTS}/report/registration_qc.html",
        f"{RESULTS}/report/results.html",
        f"{RESULTS}/report/explanations.html",
        f"{RESULTS}/report/provenance.html",
    ]


# the pins recorded by the provenance page: a param, so editing pyproject.toml elsewhere reruns nothing
PINNED_REQUIREMENTS = pinned_requirements(WORKFLOW_DIR.parent / "pyproject.toml")


# ---- explain stage ----
_unknown_explained = sorted(set(config["explain"]["experiments"]) - set(EXPERIMENTS))
if _unknown_explained:
    raise ValueError(
        f"explain.experiments names {_unknown_explained}, not defined under `experiments` ({EXPERIMENTS})"
    )


def explain_output():
    """The explanation summary, when there is anything to explain."""
    explain = config["explain"]
    wanted = EXPERIMENTS and (explain["best"] or explain["experiments"])
    return [EXPLAIN_SUMMARY] if wanted else []


def explain_experiments():
    """Experiments to explain: the listed ones, and with `best` the best by median balanced accuracy.

    The best is known only once every experiment is trained and summary.tsv written, so it is read from
    the output of the `explain_selection` checkpoint; without `best` the DAG needs no checkpoint.
    """
    if not config["explain"]["best"]:
        return list(config["explain"]["experiments"])
    return list(read_tsv(checkpoints.explain_selection.get().output[0])["experiment"])


def explain_directories(wildcards):
    return expand(EXPLAIN_DIR, experiment=explain_experiments(), fold=FOLDS)


def explain_settings():
    """The explain settings a map depends on (not the choice of experiments)."""
    skip = ("best", "experiments", "resources")
    return {k: v for k, v in config["explain"].items() if k not in skip}


def get_final_output():
    """What `snakemake` builds by default: each stage's end products."""
    return [
        STUDIES,
        PAIRS,
        FOLDS_JSON,
        MANIFEST,
        REGISTRATION_QC,
        *evaluate_output(),
        *baseline_and_report_output(),
        *explain_output(),
        *export_output(),
        *new_patients_output(),
        *predict_output(),
    ]


stop_if(predict_problem())
stop_if(
    reference_problem(config["evaluate"]["reference_experiment"], RESOLVED_EXPERIMENTS)
)
