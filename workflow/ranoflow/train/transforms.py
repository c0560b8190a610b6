"""A pair's network input, assembled per batch from its studies' store tensors (on the training device).

The studies of a batch arrive as (batch, study, modality, *grid) with their brain masks (batch, study, *grid);
the input mode decides the channels (the order of experiments.channel_names):
- stack: every modality of the current study, then of each reference in turn;
- subtract: current minus each reference in turn;
- stack_diff: the stack, then the differences (the network sees which study is current and the change).
"""

from __future__ import annotations

import torch

INPUT_MODES = ("stack", "subtract", "stack_diff")
PAIR_MASKS = ("intersection", "none")


def assemble_pairs(studies: torch.Tensor, masks: torch.Tensor, input_mode: str, pair_mask: str) -> torch.Tensor:
    """Network input (batch, channels, *grid) in float32.

    pair_mask `intersection` zeroes every channel where any study of the pair lacks brain, so that a
    difference does not measure where the studies' brain masks disagree (the rim of misregistration);
    `none` keeps each study in its own mask (outside it a preprocessed image is 0 already, so the union
    of the masks would change nothing).
    """
    if input_mode not in INPUT_MODES:
        raise ValueError(f"unknown input {input_mode!r}; choose from {INPUT_MODES}")
    if pair_mask not in PAIR_MASKS:
        raise ValueError(f"unknown pair_mask {pair_mask!r}; choose from {PAIR_MASKS}")
    x = studies.float()
    if pair_mask == "intersection":
        shared = masks.bool().all(dim=1)
        x = x * shared[:, None, None].to(x.dtype)
    current, references = x[:, :1], x[:, 1:]
    stacked = x.flatten(1, 2)
    if input_mode == "stack":
        return stacked
    differences = (current - references).flatten(1, 2)
    if input_mode == "subtract":
        return differences
    return torch.cat([stacked, differences], dim=1)


def uses_gamma(input_mode: str) -> bool:
    """Gamma is a contrast change of an MR image: on difference channels it would move the zero level."""
    return input_mode == "stack"
