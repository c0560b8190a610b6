"""Train stage (rules/train.smk): experiments, pair inputs, networks, the training loop and its drivers."""
