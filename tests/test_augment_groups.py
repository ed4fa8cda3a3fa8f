"""apply_by_group: the per-parameter-group dispatch every batched augmentation runs through."""

from __future__ import annotations

import torch

from avssl.media.augment.transform import apply_by_group, apply_to_selected


def _calls_recorder(calls: list[tuple[list[int], int]]):
    def fn(rows: torch.Tensor, index: torch.Tensor, group: int) -> torch.Tensor:
        calls.append((index.tolist(), group))
        return rows * 10 + group  # depends on both the rows and the group
    return fn


def test_each_group_gets_its_rows_and_untouched_rows_keep_their_values():
    batch = torch.arange(5 * 3, dtype=torch.float32).reshape(5, 3)
    groups = torch.tensor([2, -1, 0, 2, -1])
    calls: list[tuple[list[int], int]] = []
    out = apply_by_group(batch, groups, _calls_recorder(calls))
    assert sorted(calls) == [([0, 3], 2), ([2], 0)]
    expected = batch.clone()
    expected[[0, 3]] = batch[[0, 3]] * 10 + 2
    expected[2] = batch[2] * 10
    assert torch.equal(out, expected)
    assert torch.equal(batch, torch.arange(15, dtype=torch.float32).reshape(5, 3))  # input not modified


def test_no_group_returns_the_batch_and_one_group_is_one_call():
    batch = torch.randn(4, 2)
    calls: list[tuple[list[int], int]] = []
    assert apply_by_group(batch, torch.full((4,), -1), _calls_recorder(calls)) is batch and calls == []
    out = apply_by_group(batch, torch.full((4,), 7), _calls_recorder(calls))
    assert calls == [([0, 1, 2, 3], 7)] and torch.equal(out, batch * 10 + 7)


def test_selected_rows_only_and_dtype_kept():
    batch = torch.arange(6, dtype=torch.uint8).reshape(3, 2)
    out = apply_to_selected(batch, torch.tensor([False, True, False]), lambda rows, index: rows + 100)
    assert out.dtype == torch.uint8
    assert out.tolist() == [[0, 1], [102, 103], [4, 5]]
