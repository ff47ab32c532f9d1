"""FGSM by hand on linear models, PGD's constraints, and the attacks' lack of side effects."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from components.evaluation.adversarial import adversarial_batch, fgsm, pgd, robust_accuracy

W = torch.tensor([[2.0, -1.0, 0.5], [-1.0, 1.0, 1.5]])  # (2 classes, 3 features)
B = torch.tensor([0.3, -0.2])
X = torch.tensor([[0.5, 1.0, -1.0], [2.0, 0.0, 0.3], [-1.0, -0.5, 0.8], [0.1, 0.2, 0.3]])
Y = torch.tensor([0, 1, 0, 1])


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


@pytest.fixture(scope="module")
def blobs_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A logistic model trained on two separable 2-D blobs at (-2, -1) and (2, 1)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2  # (200,)
    centres = torch.tensor([[-2.0, -1.0], [2.0, 1.0]])
    x = centres[y] + 0.5 * torch.randn(200, 2, generator=g)  # (200, 2)
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(50):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model, x, y


def test_fgsm_by_hand_on_linear_softmax():
    model, eps = _linear(W, B), 0.1
    # logits z = Wx + b; dL/dz = softmax(z) - onehot(y); dL/dx = W^T (softmax(z) - onehot(y))
    z = X @ W.T + B  # (4, 2)
    grad = (torch.softmax(z, dim=1) - F.one_hot(Y, 2).float()) @ W  # (4, 3), row i = W^T r_i
    torch.testing.assert_close(fgsm(model, X, Y, eps), X + eps * grad.sign())
    # With 2 classes, softmax - onehot = ±(p1, -p1), so the sign is sign(W1 - W0) = (-, +, +)
    # for true class 0 (pushed towards class 1) and its opposite for true class 1.
    towards_1 = torch.tensor([-1.0, 1.0, 1.0])
    expected = X + eps * torch.stack([towards_1, -towards_1, towards_1, -towards_1])
    torch.testing.assert_close(fgsm(model, X, Y, eps), expected)


def test_fgsm_uses_bce_for_one_logit():
    w = torch.tensor([[1.0, -2.0, 0.5]])
    model, eps = _linear(w, torch.tensor([0.1])), 0.2
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    # BCE on z = w.x + b: dL/dx = (sigmoid(z) - y) w, so sign = -sign(w) for y=1, +sign(w) for y=0
    s = w[0].sign()
    expected = X + eps * torch.stack([-s, s, -s, s])
    torch.testing.assert_close(fgsm(model, X, y, eps), expected)


def test_fgsm_clamps():
    out = fgsm(_linear(W, B), X, Y, 0.5, clamp=(-0.6, 0.6))
    assert out.min() >= -0.6 and out.max() <= 0.6


def test_pgd_stays_in_ball_and_clamp():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(2)
    x = torch.rand(16, 3, generator=g)
    x[0] = torch.tensor([0.0, 1.0, 0.5])  # on the clamp's faces
    y = torch.randint(0, 3, (16,), generator=g)
    eps = 0.1
    out = pgd(model, x, y, eps, steps=7, generator=g, clamp=(0.0, 1.0))
    assert out.shape == x.shape and not out.requires_grad
    assert (out - x).abs().max() <= eps + 1e-6
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_pgd_random_start_is_reproducible_with_a_generator():
    model = _linear(W, B)
    a = pgd(model, X, Y, 0.2, steps=3, generator=torch.Generator().manual_seed(5))
    b = pgd(model, X, Y, 0.2, steps=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_one_step_pgd_without_random_start_is_fgsm():
    model = _linear(W, B)
    for clamp in (None, (-0.8, 0.8)):
        p = pgd(model, X, Y, 0.3, steps=1, step_size=0.3, random_start=False, clamp=clamp)
        assert torch.equal(p, fgsm(model, X, Y, 0.3, clamp=clamp))


def test_pgd_lowers_accuracy_at_least_as_much_as_fgsm(blobs_model):
    model, x, y = blobs_model
    eps = 2.0
    acc = robust_accuracy(model, [(x, y)], [0.0], attack="fgsm")[0.0]
    fgsm_acc = robust_accuracy(model, [(x, y)], [eps], attack="fgsm")[eps]
    pgd_acc = robust_accuracy(model, [(x, y)], [eps], attack="pgd", generator=torch.Generator().manual_seed(0))[eps]
    assert acc == 1.0  # the blobs are separable and the model learned them
    assert fgsm_acc < 0.6
    # For a two-class linear model FGSM already is the optimal L-inf attack (the worst case
    # moves every coordinate by eps against w1 - w0), so PGD can only tie it here.
    assert pgd_acc <= fgsm_acc


def test_robust_accuracy_at_eps_zero_is_clean_accuracy(blobs_model):
    model, x, y = blobs_model
    x = x + torch.tensor([1.5, 0.0])  # shift so some points are misclassified
    clean = (model(x).argmax(dim=1) == y).float().mean().item()
    assert 0.5 < clean < 1.0
    # a one-shot iterator of batches is read once for every eps
    batches = ((x[i : i + 64], y[i : i + 64]) for i in range(0, 200, 64))
    result = robust_accuracy(model, batches, [0.0, 0.5], attack="pgd", steps=3)
    assert result[0.0] == pytest.approx(clean)
    assert result[0.5] <= result[0.0]


def test_attacks_leave_no_gradients_and_restore_modes():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.train()
    model[1].eval()  # a frozen batch-norm inside a training model
    stats = model[1].running_mean.clone()
    for attack in (fgsm, pgd):
        out = attack(model, X, Y, 0.1)
        assert all(p.grad is None for p in model.parameters())
        assert model.training and model[0].training and model[2].training and not model[1].training
        assert torch.equal(model[1].running_mean, stats)
        # eval mode during the attack: dropout is off, so the attack is deterministic
        if attack is fgsm:
            assert torch.equal(out, fgsm(model, X, Y, 0.1))


def test_attack_keeps_existing_parameter_gradients_and_works_under_no_grad():
    model = _linear(W, B)
    model.weight.grad = torch.ones_like(model.weight)
    with torch.no_grad():
        out = fgsm(model, X, Y, 0.1)
    assert torch.equal(model.weight.grad, torch.ones_like(model.weight))
    assert model.bias.grad is None
    assert not torch.equal(out, X)


def test_adversarial_batch_replaces_the_first_ratio_of_rows():
    model = _linear(W, B)
    x2, y2 = adversarial_batch(model, X, Y, 0.1, attack="fgsm", ratio=0.5)
    torch.testing.assert_close(x2[:2], fgsm(model, X[:2], Y[:2], 0.1))
    assert torch.equal(x2[2:], X[2:])
    assert torch.equal(y2, Y)
    x0, _ = adversarial_batch(model, X, Y, 0.1, ratio=0.0)
    assert torch.equal(x0, X)
    x1, _ = adversarial_batch(model, X, Y, 0.1, attack="pgd", ratio=1.0, steps=2, random_start=False)
    assert (x1 - X).abs().max() <= 0.1 + 1e-6 and not torch.equal(x1, X)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: fgsm(m, X, Y, -0.1), r"eps must be >= 0, got -0.1"),
        (lambda m: fgsm(m, X.long(), Y, 0.1), r"x must be a floating-point tensor, got dtype torch.int64"),
        (lambda m: fgsm(m, X, Y[:3], 0.1), r"y must hold one target per row of x \(\(4, 3\)\), got shape \(3,\)"),
        (lambda m: fgsm(m, X, Y, 0.1, clamp=(1.0, 0.0)), r"clamp must be \(low, high\)"),
        (lambda m: pgd(m, X, Y, 0.1, steps=0), r"steps must be an integer >= 1, got 0"),
        (lambda m: pgd(m, X, Y, 0.1, step_size=-1.0), r"step_size must be >= 0, got -1.0"),
        (lambda m: robust_accuracy(m, [(X, Y)], [0.1], attack="cw"), r"attack must be 'fgsm' or 'pgd', got 'cw'"),
        (lambda m: robust_accuracy(m, [(X, Y)], []), r"eps_list must hold at least one"),
        (lambda m: robust_accuracy(m, [], [0.1]), r"batches must yield at least one example"),
        (lambda m: adversarial_batch(m, X, Y, 0.1, ratio=1.5), r"ratio must be in \[0, 1\], got 1.5"),
    ],
)
def test_errors_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call(_linear(W, B))
