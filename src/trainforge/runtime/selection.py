"""Which objects of a channel a host reads, and in which order (spec §7.5, §7.6): the key
order, reshuffled with ShuffleConfig, then split by ShardedByS3Key. File-mode staging and the
Pipe-mode feeders both ask here, so the two modes agree on a host's objects; a Pipe channel asks
again for every epoch. Pure functions of their arguments: no listing, no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def shard(objects: Sequence[T], host_index: int, host_count: int) -> list[T]:
    """ShardedByS3Key: host i (1-based) gets objects j with j mod N == i - 1, in order."""
    return [obj for j, obj in enumerate(objects) if j % host_count == host_index - 1]


def epoch_seed(seed: int, epoch: int) -> int | str:
    """The shuffle seed of an epoch. Epoch 0 uses ShuffleConfig.Seed itself, so a Pipe channel's
    first epoch is the order File mode stages; every later epoch gets its own permutation, the
    same on every host (Python seeds ``random`` from a string deterministically)."""
    return seed if epoch == 0 else f"trainforge-epoch:{seed}:{epoch}"


def ordered(objects: Sequence[T], seed: int | None, epoch: int = 0) -> list[T]:
    """``objects`` (in key order) as an epoch reads them: unchanged without a seed, else
    shuffled with the epoch's seed."""
    found = list(objects)
    if seed is not None:
        random.Random(epoch_seed(seed, epoch)).shuffle(found)
    return found


def host_objects(
    objects: Sequence[T],
    seed: int | None,
    host_index: int,
    host_count: int,
    sharded: bool,
    epoch: int = 0,
) -> list[T]:
    """What host ``host_index`` of the ``host_count`` hosts that read a channel gets in
    ``epoch``: the epoch's order, then its shard when the channel is ShardedByS3Key (so with a
    seed, objects move between hosts from one epoch to the next, as §7.6 says)."""
    found = ordered(objects, seed, epoch)
    return shard(found, host_index, host_count) if sharded else found
