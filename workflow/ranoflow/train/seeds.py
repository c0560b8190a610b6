"""The training seeds of an experiment (`training.seed` and `training.seeds`): which runs a job trains.

Kept apart from the modules train jobs import, so adding seeds changes no train job's code hash."""

from __future__ import annotations


def run_seeds(experiment: dict) -> list[int]:
    """The seeds an experiment is trained with: `training.seed` first (its runs are exported and explained),
    then each seed of `training.seeds` not equal to it, in config order."""
    training = experiment["training"]
    seeds = [int(training["seed"])]
    seeds += [int(s) for s in training.get("seeds") or [] if int(s) not in seeds]
    return seeds


def seed_run(experiment: dict, seed: int) -> dict:
    """The experiment as one seed's train job sees it: `training.seed` set and the list of seeds left out, so
    adding a seed adds train jobs and reruns none."""
    training = {k: v for k, v in experiment["training"].items() if k != "seeds"}
    return {**experiment, "training": {**training, "seed": int(seed)}}
