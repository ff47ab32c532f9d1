"""Box geometry and non-maximum suppression for object detection, in plain torch.

Boxes are (N, 4) tensors in xyxy order: (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1.
IoU with a zero union (two zero-area boxes) is 0.0, never NaN. `nms` and `batched_nms`
follow torchvision.ops: greedy, by decreasing score, a box is dropped when its IoU with a
higher-scoring kept box is strictly greater than the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """(N,) areas of (N, 4) xyxy boxes."""
    _check_boxes(boxes, "boxes")
    return _area(boxes)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) intersection over union of every box in a (N, 4) with every box in b (M, 4)."""
    _check_boxes(a, "a")
    _check_boxes(b, "b")
    return _iou_matrix(a, b)


def iou(a: torch.Tensor | Sequence[float], b: torch.Tensor | Sequence[float]) -> float:
    """IoU of two single xyxy boxes, each (4,) or a sequence of 4 numbers."""
    ta, tb = _single_box(a, "a"), _single_box(b, "b")
    return float(box_iou(ta[None], tb[None])[0, 0])


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """int64 indices of the boxes kept by greedy NMS, by decreasing score.

    Equal scores are visited in index order (a stable sort); torchvision leaves that order
    unspecified.
    """
    _check_scored(boxes, scores, iou_threshold)
    return _greedy(boxes, scores, iou_threshold, same_group=None)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS run separately within each class: a box only suppresses boxes of its own class.

    Returns int64 indices into all N boxes, by decreasing score across classes, as
    torchvision's `batched_nms` does.
    """
    _check_scored(boxes, scores, iou_threshold)
    if classes.shape != scores.shape:
        raise ValueError(f"classes must be (N,) = {tuple(scores.shape)} like scores, got shape {tuple(classes.shape)}")
    if classes.dtype.is_floating_point or classes.dtype.is_complex or classes.dtype == torch.bool:
        raise ValueError(f"classes must hold integer class ids, got dtype {classes.dtype}")
    return _greedy(boxes, scores, iou_threshold, same_group=classes)


def _greedy(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, same_group: torch.Tensor | None
) -> torch.Tensor:
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    ranked = boxes[order]  # (N, 4) best first
    overlaps = _iou_matrix(ranked, ranked) > iou_threshold  # (N, N)
    if same_group is not None:
        g = same_group[order]  # (N,)
        overlaps &= g[:, None] == g[None, :]  # other classes never suppress
    # Row i may only suppress boxes ranked after it; the diagonal is not self-suppression.
    # On the CPU: the loop below reads keep[i] every step, which on a GPU would sync each time.
    overlaps = overlaps.triu(diagonal=1).cpu()  # (N, N)
    keep = torch.ones(n, dtype=torch.bool)
    # Greedy NMS is sequential: whether box i suppresses depends on whether it survived.
    # The IoU matrix is computed once; each surviving row then clears all its overlaps at once.
    for i in range(n):
        if keep[i]:
            keep &= ~overlaps[i]
    return order[keep.to(order.device)]  # (K,) by decreasing score


def _iou_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = _floating(a), _floating(b)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2) top-left of the overlap
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2) bottom-right
    wh = (rb - lt).clamp(min=0)  # (N, M, 2) disjoint boxes overlap by 0, not a negative
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = _area(a)[:, None] + _area(b)[None, :] - inter  # (N, M)
    # The inner where keeps the division (and its gradient) finite where union is 0.
    safe_union = torch.where(union > 0, union, torch.ones_like(union))
    return torch.where(union > 0, inter / safe_union, torch.zeros_like(union))  # (N, M)


def _area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (N,)


def _check_boxes(boxes: torch.Tensor, name: str) -> None:
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, 4), got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be (N, 4) xyxy boxes, got shape {tuple(boxes.shape)}")
    if boxes.dtype.is_floating_point and not bool(torch.isfinite(boxes).all()):
        raise ValueError(f"{name} must hold finite coordinates, got NaN or inf")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])  # (N,)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{name} must be in xyxy order with x2 >= x1 and y2 >= y1, got box {i} = {boxes[i].tolist()}"
        )


def _check_scored(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> None:
    _check_boxes(boxes, "boxes")
    if not isinstance(scores, torch.Tensor) or scores.shape != (boxes.shape[0],):
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must be (N,) = ({boxes.shape[0]},) to match boxes, got {shape}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")


def _single_box(box: torch.Tensor | Sequence[float], name: str) -> torch.Tensor:
    t = torch.as_tensor(box)
    if t.shape != (4,):
        raise ValueError(f"{name} must be one xyxy box of shape (4,), got shape {tuple(t.shape)}")
    return t


def _floating(boxes: torch.Tensor) -> torch.Tensor:
    return boxes if boxes.dtype.is_floating_point else boxes.to(torch.get_default_dtype())
