import torch

from camelid.training.batching import EpochSeededLengthGroupedSampler


def _batches(order, size):
    return [order[i:i + size] for i in range(0, len(order), size)]


def test_order_is_a_function_of_seed_and_epoch_not_the_global_rng():
    lengths = [int(x) for x in torch.randint(5, 200, (300,), generator=torch.Generator().manual_seed(1))]
    s = EpochSeededLengthGroupedSampler(8, lengths=lengths, seed=3)
    torch.manual_seed(0)
    first = list(s)
    torch.manual_seed(12345)  # what --resume does: a different global RNG state when iteration starts
    assert list(s) == first
    assert sorted(first) == list(range(300))  # every example once
    s.set_epoch(1)
    assert list(s) != first  # a new shuffle each epoch
    assert list(EpochSeededLengthGroupedSampler(8, lengths=lengths, seed=4)) != first


def test_batches_group_similar_lengths():
    lengths = [int(x) for x in torch.randint(5, 200, (400,), generator=torch.Generator().manual_seed(2))]

    def padding(order):
        slots = real = 0
        for b in _batches(order, 8):
            ls = [lengths[i] for i in b]
            slots += max(ls) * len(ls)
            real += sum(ls)
        return 1 - real / slots

    grouped = padding(list(EpochSeededLengthGroupedSampler(8, lengths=lengths, seed=0)))
    shuffled = padding(torch.randperm(400, generator=torch.Generator().manual_seed(0)).tolist())
    assert grouped < shuffled / 3, (grouped, shuffled)
