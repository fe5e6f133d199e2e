"""Generated NumPy gradients vs hand-written NumPy vs PyTorch CPU (when installed).

Run: ``python benchmarks/bench_numeric.py [--quick]``. Prints, side by side in one run,
the time of one gradient evaluation (forward + backward):

* 784-256-10 MLP (sigmoid hidden, softmax–cross-entropy), batch 128, float32/float64;
* the 2-2-1 XOR net (unit form), batch 4 (overhead-bound);
* digits 64-32-10 training to a fixed epoch count (time and test accuracy);
* ``hvp`` (forward-over-reverse) against two gradient calls;
* the same generated module fed PyTorch tensors (CPU, and the GPU when there is one);
* JAX CPU ``jit(value_and_grad)`` of the same loss when JAX is installed (float32; float64
  only with ``JAX_ENABLE_X64=1``).

The generated module computes in its inputs' dtype: float32 arrays in, float32 work.
Targets (issues 4 and 15): generated code within 1.1× of hand-written NumPy in float32
and float64, at least as fast as PyTorch CPU, same digits accuracy as the PyTorch
reference within one point; hvp at about the cost of two gradients.
"""

from __future__ import annotations

import sys
import time
import timeit

import numpy as np

import chainrule
from chainrule.numeric.codegen import compiled

MLP = """const n = 784, m = 256, k = 10
param W1[m, n], b1[m], W2[k, m], b2[k]
input x[n], t[k]
z = W1 @ x + b1
h = sigma(z)
u = W2 @ h + b2
y = softmax(u)
L = -sum(t * log(y))
loss L
"""


def best(fn, number: int, repeat: int = 5) -> float:  # noqa: ANN001
    """Best mean time per call in seconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def hand_mlp(p: dict, X: np.ndarray, T: np.ndarray) -> tuple:
    """Hand-written NumPy backprop, rows are examples (the textbook way)."""
    B = X.shape[0]
    Z = X @ p["W1"].T + p["b1"]
    H = 1 / (1 + np.exp(-Z))
    U = H @ p["W2"].T + p["b2"]
    U = U - U.max(axis=1, keepdims=True)
    E = np.exp(U)
    S = E.sum(axis=1, keepdims=True)
    loss = -np.sum(T * (U - np.log(S))) / B
    dU = (E / S - T) / B
    dH = dU @ p["W2"]
    dZ = dH * H * (1 - H)
    return loss, {"W1": dZ.T @ X, "b1": dZ.sum(0), "W2": dU.T @ H, "b2": dU.sum(0)}


def hand_xor(p: dict, d: dict) -> tuple:
    x1, x2, t = d["x1"], d["x2"], d["t"]
    h1 = 1 / (1 + np.exp(-(p["w11"] * x1 + p["w12"] * x2 + p["b1"])))
    h2 = 1 / (1 + np.exp(-(p["w21"] * x1 + p["w22"] * x2 + p["b2"])))
    y = 1 / (1 + np.exp(-(p["v1"] * h1 + p["v2"] * h2 + p["c"])))
    loss = -np.mean(t * np.log(y) + (1 - t) * np.log(1 - y))
    du = (y - t) / len(t)
    dz1 = du * p["v1"] * h1 * (1 - h1)
    dz2 = du * p["v2"] * h2 * (1 - h2)
    return loss, {
        "w11": np.sum(dz1 * x1),
        "w12": np.sum(dz1 * x2),
        "b1": np.sum(dz1),
        "w21": np.sum(dz2 * x1),
        "w22": np.sum(dz2 * x2),
        "b2": np.sum(dz2),
        "v1": np.sum(du * h1),
        "v2": np.sum(du * h2),
        "c": np.sum(du),
    }


def torch_or_none():  # noqa: ANN201
    try:
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads()))
        return torch
    except ImportError:
        return None


def torch_mlp(torch, p: dict, X: np.ndarray, T: np.ndarray):  # noqa: ANN001, ANN201
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx, tt = torch.tensor(X), torch.tensor(T)

    def step() -> None:
        for v in tp.values():
            v.grad = None
        h = torch.sigmoid(tx @ tp["W1"].T + tp["b1"])
        u = h @ tp["W2"].T + tp["b2"]
        loss = -(tt * torch.log_softmax(u, dim=1)).sum() / tx.shape[0]
        loss.backward()

    return step


def jax_or_none():  # noqa: ANN201
    try:
        import jax

        return jax
    except ImportError:
        return None


def jax_mlp(jax, p: dict, X: np.ndarray, T: np.ndarray):  # noqa: ANN001, ANN201
    """jit(value_and_grad) of the same loss, the way a JAX user writes it."""
    jnp = jax.numpy

    def loss(q: dict, x: object, t: object) -> object:
        h = jax.nn.sigmoid(x @ q["W1"].T + q["b1"])
        u = h @ q["W2"].T + q["b2"]
        return -(t * jax.nn.log_softmax(u, axis=1)).sum() / x.shape[0]

    f = jax.jit(jax.value_and_grad(loss))
    jp = {k: jnp.asarray(v) for k, v in p.items()}
    jx, jt = jnp.asarray(X), jnp.asarray(T)
    f(jp, jx, jt)[0].block_until_ready()  # compile once
    return lambda: f(jp, jx, jt)[0].block_until_ready()


def bench_mlp(torch, quick: bool) -> None:  # noqa: ANN001
    prog = chainrule.parse(MLP)
    rng = np.random.default_rng(0)
    print("784-256-10 MLP, batch 128: one gradient (forward + backward)")
    print(
        f"{'dtype':<8} {'generated':>11} {'hand NumPy':>11} {'PyTorch':>11} {'JAX jit':>11} "
        f"{'gen/hand':>9} {'gen/torch':>9} {'gen on torch':>13}"
    )
    jax = jax_or_none()
    for dtype in ("float32", "float64"):
        p = {
            "W1": rng.normal(0, 0.05, (256, 784)),
            "b1": np.zeros(256),
            "W2": rng.normal(0, 0.1, (10, 256)),
            "b2": np.zeros(10),
        }
        p = {k: v.astype(dtype) for k, v in p.items()}
        X = rng.random((128, 784)).astype(dtype)
        T = np.eye(10, dtype=dtype)[rng.integers(0, 10, 128)]
        fn = compiled(prog).function  # follows its inputs: float32 in, float32 work
        data = {"x": X, "t": T}
        lg, gg = fn(p, data)
        lh, gh = hand_mlp(p, X, T)
        assert gg["W1"].dtype == np.dtype(dtype), "generated code changed the dtype"
        assert np.allclose(gg["W1"], gh["W1"], rtol=1e-3, atol=1e-6), "generated != hand"
        n = 20 if quick else 100
        tg = best(lambda: fn(p, data), n)  # noqa: B023
        th = best(lambda: hand_mlp(p, X, T), n)  # noqa: B023
        tt = best(torch_mlp(torch, p, X, T), n) if torch else float("nan")
        to = float("nan")
        if torch:  # the same generated module, fed torch tensors
            tparams = {k: torch.from_numpy(v) for k, v in p.items()}
            tdata = {k: torch.from_numpy(v) for k, v in data.items()}
            to = best(lambda: fn(tparams, tdata), n)  # noqa: B023
        tj = float("nan")
        if jax is not None and (dtype == "float32" or jax.config.read("jax_enable_x64")):
            tj = best(jax_mlp(jax, p, X, T), n)
        print(
            f"{dtype:<8} {tg * 1e3:>9.3f}ms {th * 1e3:>9.3f}ms {tt * 1e3:>9.3f}ms "
            f"{tj * 1e3:>9.3f}ms {tg / th:>9.2f} {tg / tt:>9.2f} {to * 1e3:>11.3f}ms"
        )


def bench_xor(torch, quick: bool) -> None:  # noqa: ANN001
    prog = chainrule.load("xor")
    rng = np.random.default_rng(0)
    p = {v.name: np.float64(rng.normal()) for v in prog.params}
    d = {
        "x1": np.array([0.0, 0, 1, 1]),
        "x2": np.array([0.0, 1, 0, 1]),
        "t": np.array([0.0, 1, 1, 0]),
    }
    fn = compiled(prog).function
    lg, gg = fn(p, d)
    lh, gh = hand_xor(p, d)
    assert abs(lg - lh) < 1e-12 and all(abs(gg[k] - gh[k]) < 1e-12 for k in gh)
    n = 2000 if quick else 20000
    tg, th = best(lambda: fn(p, d), n), best(lambda: hand_xor(p, d), n)
    tt = float("nan")
    if torch:
        tp = {
            k: torch.tensor(float(v), requires_grad=True, dtype=torch.float64) for k, v in p.items()
        }
        tx1, tx2, ttt = (torch.tensor(d[k]) for k in ("x1", "x2", "t"))

        def step() -> None:
            for v in tp.values():
                v.grad = None
            h1 = torch.sigmoid(tp["w11"] * tx1 + tp["w12"] * tx2 + tp["b1"])
            h2 = torch.sigmoid(tp["w21"] * tx1 + tp["w22"] * tx2 + tp["b2"])
            u = tp["v1"] * h1 + tp["v2"] * h2 + tp["c"]
            torch.nn.functional.binary_cross_entropy_with_logits(u, ttt).backward()

        tt = best(step, n // 4)
    print("\nXOR 2-2-1 (unit form), batch 4, float64: one gradient")
    print(
        f"generated {tg * 1e6:.1f} µs · hand NumPy {th * 1e6:.1f} µs · PyTorch "
        f"{tt * 1e6:.1f} µs · gen/hand {tg / th:.2f} · gen/torch {tg / tt:.2f}"
    )


def bench_digits(torch, quick: bool) -> None:  # noqa: ANN001
    try:
        from chainrule.numeric.data import load_dataset
    except ImportError:  # pragma: no cover
        return
    from chainrule.numeric.data import DataError
    from chainrule.numeric.train import TrainConfig, init_params, train

    try:
        ds = load_dataset("digits")
    except DataError as exc:
        print(f"\ndigits: skipped ({exc})")
        return
    epochs = 10 if quick else 30
    prog = chainrule.load("mlp_digits")
    order = np.random.default_rng(0).permutation(ds.n)
    test, tr = order[:360], order[360:]
    cfg = TrainConfig(epochs=epochs, lr=0.5, batch=32, seed=0)
    p0 = init_params(prog, seed=0)
    t0 = time.perf_counter()
    res = train(prog, ds.take(tr), cfg, params=p0)
    t_gen = time.perf_counter() - t0
    X, y = ds.features[test], ds.target[test].astype(int)
    fwd = compiled(prog).forward(res.params, {"x": X, "t": np.eye(10)[y]})
    acc = float(np.mean(np.argmax(fwd["y"], axis=1) == y))
    line = f"generated NumPy: {t_gen:.2f} s, test accuracy {acc:.2%}"
    if torch:
        torch.manual_seed(0)
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
        Xtr = torch.tensor(ds.features[tr])
        Ttr = torch.tensor(np.eye(10)[ds.target[tr].astype(int)])
        opt = torch.optim.SGD(tp.values(), lr=0.5)
        rng = np.random.default_rng(1)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = rng.permutation(len(tr))
            for lo in range(0, len(tr), 32):
                idx = torch.tensor(perm[lo : lo + 32])
                opt.zero_grad()
                h = torch.sigmoid(Xtr[idx] @ tp["W1"].T + tp["b1"])
                u = h @ tp["W2"].T + tp["b2"]
                loss = -(Ttr[idx] * torch.log_softmax(u, 1)).sum() / len(idx)
                loss.backward()
                opt.step()
        t_torch = time.perf_counter() - t0
        with torch.no_grad():
            h = torch.sigmoid(torch.tensor(X) @ tp["W1"].T + tp["b1"])
            tacc = float((torch.argmax(h @ tp["W2"].T + tp["b2"], 1).numpy() == y).mean())
        line += f" · PyTorch: {t_torch:.2f} s, test accuracy {tacc:.2%}"
    print(f"\ndigits 64-32-10, {epochs} epochs, batch 32, lr 0.5 (same init):")
    print(line)


def bench_hvp(quick: bool) -> None:
    """H v by the generated hvp against two gradient calls (scalar programs)."""
    rng = np.random.default_rng(0)
    print("\nhvp (forward-over-reverse) vs two gradient calls, batch 128 (unit form: float64)")
    print(f"{'model':<24} {'gradient':>10} {'hvp':>10} {'hvp / 2 gradients':>18}")
    for name in ("xor", "mlp_2_2_2", "softmax_regression", "logistic_regression"):
        prog = chainrule.load(name)
        code = compiled(prog)
        p = {v.name: np.float64(rng.normal(0, 0.5)) for v in prog.params}
        d = {v.name: rng.normal(size=128) for v in prog.inputs}
        v = {k: np.float64(rng.normal()) for k in p}
        n = 500 if quick else 3000
        tg = best(lambda: code.function(p, d), n)  # noqa: B023
        th = best(lambda: code.hvp(p, d, v), n)  # noqa: B023
        print(f"{name:<24} {tg * 1e6:>8.1f}µs {th * 1e6:>8.1f}µs {th / (2 * tg):>18.2f}")
    code = compiled(chainrule.parse(MLP))
    for dtype in ("float32", "float64"):
        p = {
            "W1": rng.normal(0, 0.05, (256, 784)).astype(dtype),
            "b1": np.zeros(256, dtype),
            "W2": rng.normal(0, 0.1, (10, 256)).astype(dtype),
            "b2": np.zeros(10, dtype),
        }
        v = {k: rng.normal(size=a.shape).astype(dtype) for k, a in p.items()}
        d = {"x": rng.random((128, 784)).astype(dtype)}
        d["t"] = np.eye(10, dtype=dtype)[rng.integers(0, 10, 128)]
        n = 10 if quick else 50
        tg = best(lambda: code.function(p, d), n)  # noqa: B023
        th = best(lambda: code.hvp(p, d, v), n)  # noqa: B023
        label = f"784-256-10 MLP {dtype}"
        print(f"{label:<24} {tg * 1e3:>8.2f}ms {th * 1e3:>8.2f}ms {th / (2 * tg):>18.2f}")


def bench_gpu(torch, quick: bool) -> None:  # noqa: ANN001
    """The same generated module on a GPU (PyTorch CUDA or CuPy), when there is one."""
    xp, to_device = None, None
    if torch is not None and torch.cuda.is_available():
        xp, to_device = "torch cuda", lambda a: torch.from_numpy(a).cuda()
    else:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                xp, to_device = "cupy", cupy.asarray
        except Exception:  # noqa: BLE001 - no CuPy, no driver, no device
            pass
    if xp is None:
        print("\nGPU: none (no CUDA device with PyTorch or CuPy): skipped")
        return
    prog = chainrule.parse(MLP)
    fn = compiled(prog).function
    rng = np.random.default_rng(0)
    print(f"\n784-256-10 MLP, batch 128, the same generated module on the GPU ({xp})")
    for dtype in ("float32", "float64"):
        p = {
            "W1": rng.normal(0, 0.05, (256, 784)).astype(dtype),
            "b1": np.zeros(256, dtype),
            "W2": rng.normal(0, 0.1, (10, 256)).astype(dtype),
            "b2": np.zeros(10, dtype),
        }
        data = {
            "x": rng.random((128, 784)).astype(dtype),
            "t": np.eye(10, dtype=dtype)[rng.integers(0, 10, 128)],
        }
        gp = {k: to_device(v) for k, v in p.items()}
        gd = {k: to_device(v) for k, v in data.items()}

        def call() -> None:
            fn(gp, gd)[0].item()  # noqa: B023 - .item() waits for the device

        tg = best(call, 20 if quick else 200)
        print(f"{dtype:<8} {tg * 1e3:>9.3f}ms per gradient (device-synchronized)")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    torch = torch_or_none()
    if torch is None:
        print("(PyTorch not installed: its columns show nan)\n")
    bench_mlp(torch, quick)
    bench_xor(torch, quick)
    bench_hvp(quick)
    bench_gpu(torch, quick)
    bench_digits(torch, quick)


if __name__ == "__main__":
    main(sys.argv[1:])
