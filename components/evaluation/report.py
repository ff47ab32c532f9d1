"""The test-set report of a model: per-class and averaged metrics, ROC-AUC for binary
tasks, and the confusion matrix and ROC curve as PNG images; then what `evaluation` asks
besides: accuracy under attack and the visual report of image models."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from components.config import EvaluationConfig
from components.data.tokenizers import EOS_ID
from components.evaluation.entities import entity_scores
from components.evaluation.figures import png
from components.evaluation.metrics import confusion_matrix
from components.evaluation.robustness import PixelStats, robust_metrics
from components.evaluation.scoring import score
from components.evaluation.verification import embed, label_pairs, verification_metrics
from components.evaluation.visualize import default_layer, visual_report
from components.models.outputs import predict_arrays

CAM_HEAD = "head"  # the cnn kinds' linear head: CAM is drawn when it follows global average pooling


@dataclass
class HoldoutReport:
    metrics: dict[str, float]  # test_* scalars, per class as test_precision.<label> etc.
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) over every threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-scores, kind="stable")
    y, s = y_true[order].astype(bool), scores[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each score value
    tps, fps = np.cumsum(y)[distinct], np.cumsum(~y)[distinct]
    positives, negatives = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives]


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids; ties count one half)."""
    fpr, tpr = roc_curve(y_true, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def holdout_report(model: Any, inputs: np.ndarray, labels: np.ndarray, task: str, out_features: int,
                class_names: list[str] | None = None) -> HoldoutReport:
    """Score `model` on the test split; images only for classification."""
    metrics = {f"test_{k}": float(v) for k, v in score(model, inputs, labels, task, out_features).items()}
    if task != "classification":
        return HoldoutReport(metrics)
    n = max(2, out_features)
    names = class_names or [str(i) for i in range(n)]
    pred, proba = predict_arrays(model, inputs, task, out_features)
    cm = confusion_matrix(labels.astype(np.int64), pred, n)  # rows: true class
    for c, name in enumerate(names):
        tp, predicted, actual = cm[c, c], cm[:, c].sum(), cm[c, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", name)  # MLflow metric names allow only these
        metrics[f"test_precision.{label}"] = float(precision)
        metrics[f"test_recall.{label}"] = float(recall)
        metrics[f"test_f1.{label}"] = float(2 * precision * recall / (precision + recall)) if tp else 0.0
    images = {"confusion_matrix.png": _confusion_png(cm, names)}
    if n == 2:
        metrics["test_roc_auc"] = roc_auc(labels == 1, proba[:, 1])
        images["roc_curve.png"] = _roc_png(*roc_curve(labels == 1, proba[:, 1]), metrics["test_roc_auc"])
    return HoldoutReport(metrics, images)


def tagging_report(model: nn.Module, inputs: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
                   batch_size: int = 256) -> HoldoutReport:
    """Entity precision, recall and F1 (micro, macro, per type) and per-token accuracy of a
    tagger on the test split: `inputs` (N, T) token ids (or (N, T, 1 + W) with characters),
    `labels` (N, T) tag ids, padded."""
    model.eval()
    paths: list[list[int]] = []
    for start in range(0, len(inputs), batch_size):
        paths += model.decode(torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])))
    n = ((inputs[..., 0] if inputs.ndim == 3 else inputs) != 0).sum(axis=1)  # words, when tokens carry characters
    true = [[classes[t] for t in row[:k]] for row, k in zip(labels.tolist(), n)]
    predicted = [[classes[t] for t in path] for path in paths]
    tokens = int(n.sum())
    correct = sum(a == b for t, p in zip(true, predicted) for a, b in zip(t, p))
    scores = {"token_accuracy": correct / tokens if tokens else 0.0, **entity_scores(true, predicted)}
    return HoldoutReport({f"test_{k}": float(v) for k, v in scores.items()})


def language_model_report(model: nn.Module, inputs: np.ndarray, labels: np.ndarray,
                          batch_size: int = 64) -> HoldoutReport:
    """Cross-entropy per token, perplexity and bits per token of a language model on the
    test split's windows: `inputs` (N, T) ids, `labels` (N, T) the next ids, padded."""
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size]))
            y = torch.from_numpy(np.ascontiguousarray(labels[start : start + batch_size]))
            mask = x != 0
            logits = model(x).float()
            total += torch.nn.functional.cross_entropy(logits[mask], y[mask], reduction="sum").item()
            tokens += int(mask.sum())
    loss = total / tokens if tokens else float("nan")
    return HoldoutReport({"test_loss": loss, "test_perplexity": math.exp(min(loss, 50.0)),
                          "test_bits_per_token": loss / math.log(2)})


def seq2seq_report(model: nn.Module, inputs: np.ndarray, labels: np.ndarray, state: Any, beam_size: int = 4,
                   beam_rows: int = 500, pictures: int = 3) -> HoldoutReport:
    """A sequence-to-sequence model on the test split, greedy and by beam search (the first
    `beam_rows` sources): exact match and corpus BLEU (sacrebleu) of the decoded targets,
    and `attention_<i>.png` maps (target tokens against source tokens) of the first few."""
    import sacrebleu

    model.eval()
    source_ids = [row[row != 0].tolist() for row in inputs]
    truths = []
    for row in labels.tolist():
        body = row[1:]  # after <BOS>
        truths.append(state.target_text(body[: body.index(EOS_ID)] if EOS_ID in body else body))
    greedy: list[str] = []
    maps: list[torch.Tensor] = []
    for start in range(0, len(inputs), 256):
        rows, attention = model.greedy(torch.from_numpy(np.ascontiguousarray(inputs[start : start + 256])),
                                       state.max_target_length + 1)
        greedy += [state.target_text(r) for r in rows]
        maps += attention
    beamed = [state.target_text(model.beam_search(torch.from_numpy(inputs[i : i + 1]), beam_size,
                                                  state.max_target_length + 1)[0])
              for i in range(min(beam_rows, len(inputs)))]
    n = len(beamed)
    metrics = {
        "test_exact_match": float(np.mean([g == t for g, t in zip(greedy, truths)])) if truths else 0.0,
        "test_bleu": sacrebleu.corpus_bleu(greedy, [truths]).score,
        f"test_exact_match_beam{beam_size}": float(np.mean([b == t for b, t in zip(beamed, truths)])) if n else 0.0,
        f"test_bleu_beam{beam_size}": sacrebleu.corpus_bleu(beamed, [truths[:n]]).score,
        f"test_exact_match_greedy_first{n}": float(np.mean([g == t for g, t in zip(greedy[:n], truths)])) if n else 0.0,
    }
    images = {
        f"attention_{i}.png": _attention_png(maps[i], state.source_tokenizer.tokens(source_ids[i]),
                                             [*state.target_tokenizer.tokens(state.target_tokenizer.encode(greedy[i])),
                                              "<EOS>"])
        for i in range(min(pictures, len(maps)))
    }
    return HoldoutReport(metrics, images)


def _attention_png(weights: torch.Tensor, source: list[str], target: list[str]) -> bytes:
    """Rows: the target tokens written; columns: the source tokens read; darker: more attention."""
    w = weights.numpy()[: len(target), : len(source)]
    fig = Figure(figsize=(1.5 + 0.25 * len(source), 1.2 + 0.25 * len(target)))
    ax = fig.subplots()
    ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set(xticks=range(len(source)), yticks=range(len(target)), xticklabels=[repr(t)[1:-1] for t in source],
           yticklabels=target, xlabel="source", ylabel="written", title="attention")
    return png(fig)


def verification_report(model: nn.Module, inputs: np.ndarray, labels: np.ndarray, threshold: float) -> HoldoutReport:
    """One-shot verification of an embedding model on the test split, at the threshold
    chosen on validation: test_accuracy, test_true_accept_rate, test_false_accept_rate,
    test_f1 on balanced pairs drawn from the test labels, and distances.png (the same and
    different pairs' distances with the threshold)."""
    if len(labels) == 0:
        raise ValueError("cannot score on an empty split")
    distances, same = label_pairs(embed(model, inputs), labels)
    scores = verification_metrics(distances, same, threshold)
    metrics = {f"test_{k}": scores[k] for k in ("accuracy", "true_accept_rate", "false_accept_rate", "f1")}
    return HoldoutReport(metrics, {"distances.png": _distances_png(distances, same, threshold)})


def evaluation_report(model: Any, inputs: np.ndarray, labels: np.ndarray, evaluation: EvaluationConfig, *,
                      classes: list[str], pixels: PixelStats | None) -> HoldoutReport:
    """What `evaluation` asks beyond the scores, on the test split (inputs, labels (N,)):
    `test_<attack>_accuracy.eps_<eps>` for every attack and eps (torch models), and for image models
    (`pixels`: the processor's per-channel mean and std) with convolutions the visual report:
    filters.png, activations.png, saliency.png, grad_cam.png, cam.png (global-average-pooling
    models only) and activation_max.png."""
    check_evaluation(evaluation, model, len(classes), image=pixels is not None)
    report = HoldoutReport({})
    # a search over several families may pick an estimator: no gradients, so no attacks (a
    # gate on those metrics then fails as not computed)
    if evaluation.attacks and isinstance(model, nn.Module):
        n = evaluation.attack_samples or len(labels)
        report.metrics.update(robust_metrics(
            model, inputs[:n], labels[:n], attacks=evaluation.attacks, eps=evaluation.eps, pixels=pixels,
            pgd_steps=evaluation.pgd_steps, pgd_step_size=evaluation.pgd_step_size, seed=evaluation.seed,
        ))
    layer = evaluation.gradcam_layer or (default_layer(model) if isinstance(model, nn.Module) else None)
    if evaluation.visual and pixels is not None and layer is not None:
        report.images.update(visual_report(
            model, inputs[: evaluation.visual_samples], labels[: evaluation.visual_samples], layer=layer,
            classes=classes, gap_head=CAM_HEAD, max_images=evaluation.visual_samples,
            steps=evaluation.activation_max_steps, activation_classes=evaluation.activation_max_classes,
        ))
    return report


def check_evaluation(evaluation: EvaluationConfig, model: Any, n_classes: int, *, image: bool) -> None:
    """Raise ValueError naming the `evaluation` key that `model` (an image model when `image`)
    cannot honour: a named Grad-CAM layer must exist, activation-maximisation classes must be
    class indices. Cheap: run it on a freshly built model before training, too."""
    if not (image and evaluation.visual and isinstance(model, nn.Module)):
        return
    if evaluation.gradcam_layer is not None:
        names = dict(model.named_modules())
        if evaluation.gradcam_layer not in names:
            convs = [n for n, m in names.items() if isinstance(m, nn.Conv2d)]
            raise ValueError(
                f"evaluation.gradcam_layer {evaluation.gradcam_layer!r} names no module of the "
                f"{type(model).__name__}; its top-level modules: {[n for n, _ in model.named_children()]}, "
                f"its conv layers: {convs or 'none'}"
            )
    picked = evaluation.activation_max_classes or []
    out_of_range = [c for c in picked if c >= max(2, n_classes)]
    if out_of_range:
        raise ValueError(
            f"evaluation.activation_max_classes must be class indices below {max(2, n_classes)}, got {out_of_range}"
        )


def _distances_png(distances: np.ndarray, same: np.ndarray, threshold: float) -> bytes:
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    bins = np.linspace(0.0, max(float(distances.max()), threshold) * 1.05, 40)
    ax.hist(distances[same], bins=bins, alpha=0.6, label="same class")
    ax.hist(distances[~same], bins=bins, alpha=0.6, label="different classes")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="embedding distance", ylabel="pairs", title="verification pairs (test)")
    ax.legend()
    return png(fig)


def _confusion_png(cm: np.ndarray, names: list[str]) -> bytes:
    fig = Figure(figsize=(1.2 + 0.6 * len(names), 1.0 + 0.6 * len(names)))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    ax.tick_params(axis="x", labelrotation=30)
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > cm.max() / 2 else "black")
    return png(fig)


def _roc_png(fpr: np.ndarray, tpr: np.ndarray, auc: float) -> bytes:
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    return png(fig)

