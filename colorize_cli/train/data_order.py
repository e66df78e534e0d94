"""Resumable data order: which images, with which augmentation seeds, each step of a run sees.

The order is a pure function of (seed, step, rank, world size): a resumed run starts at its step and sees
exactly what a straight run would, whatever the number of loader workers.
"""

from collections import Counter

import torch
from torch.utils.data import Dataset, Sampler

# Item seeds are drawn below 2**62 so that they stay valid torch seeds.
_SEED_BOUND = 2**62


class SeededItems(Dataset):
    """Indexed by (index, seed): the item's random augmentation is drawn from its own seed."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        # fork_rng restores the global RNG afterwards: with workers=0 this runs in the training process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


def balance_weights(folders, power):
    """Sampling weight of each image: (images in its folder) ** -power, so that folder f is drawn in
    proportion to n_f ** (1 - power). 0 keeps the data's own mix, 1 draws every folder equally often,
    0.5 (square-root balance) lifts small folders without repeating their few photos too often."""
    if not 0 <= power <= 1:
        raise ValueError(f"balance power must be in [0, 1], got {power}")
    counts = Counter(folders)
    return torch.tensor([counts[folder] ** -power for folder in folders], dtype=torch.float64)


class StepBatches(Sampler):
    """Endless batches of (index, seed) keys from `start_step` on; epochs are fresh permutations.

    With `weights`, an epoch is instead `length` draws with replacement in proportion to them (see
    balance_weights). Each rank takes every `world_size`-th image of the epoch's order (as
    DistributedSampler does), and incomplete batches are dropped so that all ranks run the same number
    of steps.
    """

    def __init__(self, length, batch_size, *, seed, start_step=0, rank=0, world_size=1, weights=None):
        if weights is not None and len(weights) != length:
            raise ValueError(f"{len(weights)} sampling weights for {length} images")
        self.weights = weights
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size
        self.steps_per_epoch = length // world_size // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{length} training image(s) do not fill one batch of {batch_size} on each of {world_size} "
                "process(es); lower --batch-size or add images"
            )

    def epoch_keys(self, epoch):
        """This rank's (index, seed) keys of `epoch`, in order."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.weights is None:
            order = torch.randperm(self.length, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.length, replacement=True, generator=generator)
        seeds = torch.randint(_SEED_BOUND, (self.length,), generator=generator)
        used = self.steps_per_epoch * self.batch_size * self.world_size
        return list(zip(order[:used].tolist(), seeds[:used].tolist()))[self.rank :: self.world_size]

    def __iter__(self):
        epoch, offset = divmod(self.start_step, self.steps_per_epoch)
        while True:
            keys = self.epoch_keys(epoch)
            for batch in range(offset, self.steps_per_epoch):
                yield keys[batch * self.batch_size : (batch + 1) * self.batch_size]
            epoch, offset = epoch + 1, 0
