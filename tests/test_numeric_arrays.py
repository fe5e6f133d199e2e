"""Generated code follows its inputs: dtype (float32 in, float32 out) and array library."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule.numeric.codegen import compiled, generate
from chainrule.numeric.gradcheck import random_point

MODELS = ["xor", "logistic_least_squares", "softmax_regression", "vector_mlp", "mlp_digits"]
MODELS += ["softmax_regression_vector", "tanh_mlp3"]


def point(model: str, batch: int = 5) -> tuple[dict[str, Any], dict[str, Any]]:
    return random_point(chainrule.load(model), np.random.default_rng(1), batch)


def cast(values: dict[str, Any], dtype: Any) -> dict[str, Any]:
    return {k: np.asarray(v, dtype=dtype) for k, v in values.items()}


@pytest.mark.parametrize("model", MODELS)
def test_float32_in_float32_out_with_float64_values(model: str) -> None:
    fn = compiled(model).function
    params, data = point(model)
    loss64, grads64 = fn(params, data)
    loss32, grads32 = fn(cast(params, np.float32), cast(data, np.float32))
    assert loss32.dtype == np.float32 and loss64.dtype == np.float64
    for k, g in grads32.items():
        assert g.dtype == np.float32, k
        assert g.shape == np.shape(params[k])
        np.testing.assert_allclose(g, grads64[k], rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5)


def test_float32_params_with_integer_labels_stay_float32() -> None:
    fn = compiled("vector_mlp").function
    params, data = point("vector_mlp")
    data["t"] = np.round(data["t"]).astype(np.int64)
    loss, grads = fn(cast(params, np.float32), {**data, "x": data["x"].astype(np.float32)})
    assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())


def test_plain_numbers_and_lists_compute_in_float64() -> None:
    loss, grads = compiled("sum_times").function({"x": -2.0, "y": 5.0, "z": -4}, {})
    assert float(loss) == -12.0 and grads["z"].dtype == np.float64


def test_explicit_dtype_is_a_cast() -> None:
    params, data = point("xor")
    fn = generate("xor", dtype="float64").function
    loss, grads = fn(cast(params, np.float32), cast(data, np.float32))
    assert loss.dtype == np.float64 and grads["c"].dtype == np.float64
    assert "dtype = xp.float64" in generate("xor", dtype="float64").source
    assert "xp.float64  #" not in generate("xor").source  # by default: no cast at all


@pytest.mark.parametrize("model", MODELS)
def test_array_api_strict_round_trip(model: str) -> None:
    xps = pytest.importorskip("array_api_strict")
    fn = compiled(model).function
    params, data = point(model)
    loss, grads = fn(params, data)
    array = type(xps.asarray(0.0))
    for dtype in (xps.float64, xps.float32):
        p = {k: xps.asarray(v, dtype=dtype) for k, v in params.items()}
        d = {k: xps.asarray(v, dtype=dtype) for k, v in data.items()}
        sloss, sgrads = fn(p, d)
        assert isinstance(sloss, array) and sloss.dtype == dtype
        tol = 1e-12 if dtype == xps.float64 else 2e-3
        for k, g in sgrads.items():
            assert isinstance(g, array) and g.dtype == dtype, k
            np.testing.assert_allclose(np.from_dlpack(g), grads[k], rtol=tol, atol=tol / 100)
        np.testing.assert_allclose(np.from_dlpack(sloss), loss, rtol=max(tol, 1e-6))


@pytest.mark.parametrize("model", ["xor", "vector_mlp", "softmax_regression_vector"])
def test_torch_tensors_in_torch_tensors_out(model: str) -> None:
    torch = pytest.importorskip("torch")
    fn = compiled(model).function
    params, data = point(model)
    loss, grads = fn(params, data)
    p = {k: torch.tensor(np.asarray(v), dtype=torch.float32) for k, v in params.items()}
    d = {k: torch.tensor(np.asarray(v), dtype=torch.float32) for k, v in data.items()}
    tloss, tgrads = fn(p, d)
    assert isinstance(tloss, torch.Tensor) and tloss.dtype == torch.float32
    for k, g in tgrads.items():
        assert isinstance(g, torch.Tensor) and g.dtype == torch.float32
        np.testing.assert_allclose(g.numpy(), grads[k], rtol=2e-3, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_helpers_in_every_dtype(dtype: Any) -> None:
    """Sigmoid and softplus at |z| far past exp's overflow (89 in float32, 710 in float64)."""
    program = chainrule.parse(
        "param w\ninput x, t\ny = sigma(w*x)\nL = softplus(w*x) - t*y\nloss L"
    )
    fn = compiled(program).function
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grads = fn({"w": np.asarray(1.0, dtype)}, {"x": x, "t": np.ones_like(x)})
    assert loss.dtype == dtype and np.isfinite(loss) and np.isfinite(grads["w"])
    # softplus(z) - σ(z) at z = ±1000, ±100, 0: mean of (1000 - 1, 100 - 1, log 2 - 1/2, 0, 0)
    expected = (999 + 99 + np.log(2) - 0.5) / 5
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_train_float32_end_to_end() -> None:
    from chainrule.numeric.data import xor
    from chainrule.numeric.train import TrainConfig, train

    seen: list[Any] = []
    program = chainrule.load("xor")
    code = compiled(program)
    original = code.namespace["loss_and_grad"]

    def spy(params: dict[str, Any], data: dict[str, Any], reduction: str = "mean") -> Any:
        seen.extend(np.asarray(v).dtype for v in [*params.values(), *data.values()])
        loss, grads = original(params, data, reduction)
        seen.extend(g.dtype for g in grads.values())
        return loss, grads

    code.namespace["loss_and_grad"] = spy
    try:
        r = train(program, xor(), TrainConfig(epochs=400, lr=2.0, batch=4, seed=3, dtype="float32"))
    finally:
        code.namespace["loss_and_grad"] = original
    assert seen and set(seen) == {np.dtype(np.float32)}
    assert all(v.dtype == np.float32 for v in r.params.values())
    assert r.history["epochs"][-1]["accuracy"] == 1.0


@pytest.mark.parametrize("dtype, big", [(np.float64, 800.0), (np.float32, 120.0)])
def test_unit_form_softmax_is_stable_in_every_dtype(dtype: Any, big: float) -> None:
    """exp(z_k)/S past exp's overflow: generated code shifts the exponents by their max."""
    code = compiled("softmax_regression")
    assert "S_max = xp.maximum(xp.maximum(z1, z2), z3)" in code.source
    params = {k: np.asarray(0.0, dtype) for k in code.params}
    for k, b in zip(("b1", "b2", "b3"), (big, big - 1, big - 2), strict=True):
        params[k] = np.asarray(b, dtype)  # z = (big, big - 1, big - 2) for x = 0
    zero = np.zeros(2, dtype)
    data = {"x1": zero, "x2": zero, "t1": np.array([1.0, 0.0], dtype)}
    data |= {"t2": np.array([0.0, 1.0], dtype), "t3": zero}
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grads = code.function(params, data)
    y = np.exp([0.0, -1.0, -2.0]) / np.exp([0.0, -1.0, -2.0]).sum()
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss, -(np.log(y[0]) + np.log(y[1])) / 2, rtol=1e-5)
    # ∂L/∂b_k = mean over the examples of y_k − t_k
    expected = [y[0] - 0.5, y[1] - 0.5, y[2]]
    got = [grads[k] for k in ("b1", "b2", "b3")]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    # forward() reports the model's own S = Σ exp(z_k)
    small = {**params, "b1": np.asarray(1.0, dtype), "b2": np.asarray(0.0, dtype)}
    small["b3"] = np.asarray(0.0, dtype)
    np.testing.assert_allclose(code.forward(small, data)["S"], np.exp(1.0) + 2, rtol=1e-6)


def test_cli_train_dtype_float32_saves_float32(tmp_path: Any) -> None:
    from chainrule.cli import main

    p = tmp_path / "p.npz"
    argv = ["train", "xor", "--data", "xor", "--epochs", "400", "--lr", "2", "--batch", "4"]
    rc = main([*argv, "--seed", "3", "--dtype", "float32", "--save", str(p)])
    assert rc == 0
    with np.load(p) as z:
        assert {z[k].dtype for k in z.files} == {np.dtype(np.float32)}


@pytest.mark.parametrize("model", ["xor", "vector_mlp", "softmax_regression_vector"])
def test_jax_arrays_in_jax_arrays_out(model: str) -> None:
    jnp = pytest.importorskip("jax.numpy")
    fn = compiled(model).function
    params, data = point(model)
    loss, grads = fn(params, data)
    p = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in params.items()}
    d = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in data.items()}
    jloss, jgrads = fn(p, d)
    assert type(jloss) is type(jnp.asarray(0.0)) and jloss.dtype == jnp.float32
    for k, g in jgrads.items():
        assert type(g) is type(jnp.asarray(0.0)) and g.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(g), grads[k], rtol=2e-3, atol=2e-5)


def test_cupy_arrays_on_the_gpu_in_cupy_arrays_out() -> None:
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:  # noqa: BLE001 - no driver
        pytest.skip("no CUDA driver")
    fn = compiled("vector_mlp").function
    params, data = point("vector_mlp")
    loss, grads = fn(params, data)
    gloss, ggrads = fn(
        {k: cupy.asarray(np.asarray(v, np.float32)) for k, v in params.items()},
        {k: cupy.asarray(np.asarray(v, np.float32)) for k, v in data.items()},
    )
    assert isinstance(gloss, cupy.ndarray) and gloss.dtype == np.float32
    for k, g in ggrads.items():
        assert isinstance(g, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(g), grads[k], rtol=2e-3, atol=2e-5)
