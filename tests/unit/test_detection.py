"""Box IoU and NMS against hand-worked numbers and a brute-force pure-Python reference."""

from __future__ import annotations

import pytest
import torch

from components.evaluation.detection import batched_nms, box_area, box_iou, iou, nms


def _ref_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _ref_nms(boxes: list[list[float]], scores: list[float], threshold: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(_ref_iou(boxes[i], boxes[k]) <= threshold for k in kept):
            kept.append(i)
    return kept


def _random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 50
    wh = 1 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 20
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.cat([xy, xy + wh], dim=1), scores  # (n, 4), (n,)


def test_iou_by_hand():
    # overlap is the unit square [1,2]x[1,2]: intersection 1, union 4 + 4 - 1 = 7
    assert iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert iou([0, 0, 2, 2], [0, 0, 2, 2]) == pytest.approx(1.0)
    assert iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0  # disjoint
    assert iou([0, 0, 1, 1], [1, 0, 2, 1]) == 0.0  # touching edges share no area
    # containment: inner 1x1 inside outer 4x4, intersection 1, union 16
    assert iou([0, 0, 4, 4], [1, 1, 2, 2]) == pytest.approx(1 / 16)


def test_zero_area_boxes_give_zero_not_nan():
    point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    line = torch.tensor([[0.0, 1.0, 3.0, 1.0]])
    square = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    m = box_iou(torch.cat([point, line, square]), torch.cat([point, line, square]))
    assert not torch.isnan(m).any()
    torch.testing.assert_close(m, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    # and the gradient through a zero union stays finite
    boxes = torch.cat([point, point]).requires_grad_()
    box_iou(boxes, boxes).sum().backward()
    assert torch.isfinite(boxes.grad).all()


def test_box_area_and_iou_matrix_against_reference():
    boxes, _ = _random_boxes(12, seed=0)
    torch.testing.assert_close(box_area(boxes), (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    m = box_iou(boxes[:5], boxes)
    assert m.shape == (5, 12)
    ref = torch.tensor([[_ref_iou(a, b) for b in boxes.tolist()] for a in boxes[:5].tolist()], dtype=torch.float64)
    torch.testing.assert_close(m, ref)


def test_integer_boxes_give_float_iou():
    m = box_iou(torch.tensor([[0, 0, 2, 2]]), torch.tensor([[1, 1, 3, 3]]))
    assert m.dtype.is_floating_point
    assert m.item() == pytest.approx(1 / 7)


# index: box, score
#   0: (0,0,10,10)   0.90
#   1: (0,3,10,13)   0.80  IoU with 0: 10*7 / (100+100-70) = 70/130 = 0.538
#   2: (0,6,10,16)   0.70  IoU with 0: 10*4 / 160 = 0.25; with 1: 0.538
#   3: (20,20,30,30) 0.95  disjoint from 0-2
#   4: (20,20,30,25) 0.60  IoU with 3: 50/100 = 0.5 exactly
HAND_BOXES = torch.tensor(
    [[0, 0, 10, 10], [0, 3, 10, 13], [0, 6, 10, 16], [20, 20, 30, 30], [20, 20, 30, 25]], dtype=torch.float32
)
HAND_SCORES = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.6])


def test_nms_by_hand():
    # threshold 0.5, visiting by score 3, 0, 1, 2, 4:
    # 3 kept; 0 kept (disjoint); 1 dropped (0.538 > 0.5 with 0);
    # 2 kept (0.25 with 0; 1 was dropped so cannot suppress it);
    # 4 kept (IoU 0.5 is not > 0.5)
    assert nms(HAND_BOXES, HAND_SCORES, 0.5).tolist() == [3, 0, 2, 4]
    # threshold 0.6: the largest IoU is 0.538, so every box survives
    assert nms(HAND_BOXES, HAND_SCORES, 0.6).tolist() == [3, 0, 1, 2, 4]
    # threshold 0.4: 4 now dropped by 3 (0.5 > 0.4); 1 dropped, 2 kept as before
    assert nms(HAND_BOXES, HAND_SCORES, 0.4).tolist() == [3, 0, 2]


def test_nms_result_is_int64_and_empty_input_is_fine():
    kept = nms(HAND_BOXES, HAND_SCORES, 0.5)
    assert kept.dtype == torch.int64
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.dtype == torch.int64 and empty.numel() == 0


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_brute_force(threshold):
    boxes, scores = _random_boxes(50, seed=1)
    expected = _ref_nms(boxes.tolist(), scores.tolist(), threshold)
    assert nms(boxes, scores, threshold).tolist() == expected


def test_batched_nms_is_nms_per_class():
    boxes, scores = _random_boxes(50, seed=2)
    classes = torch.randint(0, 3, (50,), generator=torch.Generator().manual_seed(3))
    expected: list[int] = []
    for c in range(3):
        idx = (classes == c).nonzero().flatten().tolist()
        kept = _ref_nms([boxes[i].tolist() for i in idx], [scores[i].item() for i in idx], 0.3)
        expected += [idx[k] for k in kept]
    expected.sort(key=lambda i: -scores[i].item())
    assert batched_nms(boxes, scores, classes, 0.3).tolist() == expected


def test_batched_nms_keeps_overlapping_boxes_of_different_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.5, 0.9, 0.7])
    # 1 and 2 are class 0 (identical: 2 dropped); 0 is class 1 and survives alone
    assert batched_nms(boxes, scores, torch.tensor([1, 0, 0]), 0.5).tolist() == [1, 0]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: box_area(torch.zeros(3, 3)), r"boxes must be \(N, 4\).*\(3, 3\)"),
        (lambda: box_iou(torch.zeros(4), torch.zeros(1, 4)), r"a must be \(N, 4\).*\(4,\)"),
        (lambda: box_iou(torch.zeros(1, 4), torch.tensor([[2.0, 0, 1, 1]])), r"b must be in xyxy order.*box 0"),
        (lambda: box_area(torch.tensor([[0.0, 0, 1, 1], [0, 2, 1, 1]])), r"y2 >= y1, got box 1"),
        (lambda: box_area(torch.tensor([[0.0, 0, float("nan"), 1]])), r"boxes must hold finite"),
        (lambda: iou([0, 0, 1], [0, 0, 1, 1]), r"a must be one xyxy box of shape \(4,\), got shape \(3,\)"),
        (lambda: nms(HAND_BOXES, HAND_SCORES[:3], 0.5), r"scores must be \(N,\) = \(5,\).*\(3,\)"),
        (lambda: nms(HAND_BOXES, HAND_SCORES, 1.5), r"iou_threshold must be in \[0, 1\], got 1.5"),
        (lambda: batched_nms(HAND_BOXES, HAND_SCORES, torch.zeros(4, dtype=torch.long), 0.5), r"classes must be"),
        (lambda: batched_nms(HAND_BOXES, HAND_SCORES, torch.zeros(5), 0.5), r"integer class ids, got dtype"),
    ],
)
def test_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
