"""Random augmentations of a training batch, run on the batch's device."""

from __future__ import annotations

import torch


class BatchAugment:
    """The paper's augmentations, drawn per sample and applied to a whole batch on its device.

    Same formulas as MONAI's RandFlip (per axis), RandScaleIntensity (x (1 + U(-f, f))),
    RandAdjustContrast (gamma on the min-max range of the whole multi-channel sample, as MONAI does
    for one image) and RandGaussianNoise (std ~ U(0, noise_std)). One range for all channels keeps the
    pair's label: a range per channel would map a study with a bright tumour (a high maximum) and its
    reference without one differently, and change how large the tumour looks in one study against the
    other, which is what the rating compares. Gamma is a contrast change of an MR image: on a
    difference image (input subtract) it would move the zero level, so it is applied to stacked inputs
    only.
    Running them as torch ops on the training device instead of as per-item MONAI transforms in the
    loader matters at 128^3: there MONAI's numpy noise and gamma take about a second per item on a CPU
    core, longer than a GPU step.
    """

    def __init__(self, augment: dict, gamma: bool = True) -> None:
        self.settings = augment
        self.gamma = gamma
        self.params = torch.Generator()
        self.noise: dict[torch.device, torch.Generator] = {}
        self.reseed(0)

    def reseed(self, seed: int) -> None:
        """Fix every draw of the next batches (called at the start of each epoch)."""
        self.seed = seed
        self.params.manual_seed(seed)
        self.noise.clear()

    def _uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.params))

    def _noise_generator(self, device: torch.device) -> torch.Generator:
        if device not in self.noise:
            self.noise[device] = torch.Generator(device=device).manual_seed(self.seed + 1)
        return self.noise[device]

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        a = self.settings
        out = []
        for x in image:
            for axis in range(1, x.dim()):
                if self._uniform() < a["flip_prob"]:
                    x = torch.flip(x, dims=(axis,))
            if self._uniform() < a["scale_intensity_prob"]:
                f = a["scale_intensity_factor"]
                x = x * (1 + self._uniform(-f, f))
            if self._uniform() < a["gamma_prob"] and self.gamma:
                gamma = self._uniform(*a["gamma_range"])
                low = x.amin()
                span = x.amax() - low
                x = ((x - low) / (span + 1e-7)) ** gamma * span + low
            if self._uniform() < a["noise_prob"]:
                std = self._uniform(0, a["noise_std"])
                x = x + std * torch.randn(x.shape, generator=self._noise_generator(x.device), device=x.device)
            out.append(x)
        return torch.stack(out).to(image.dtype)
