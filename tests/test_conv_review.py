"""Fresh-eyes review of the tensor / CNN features (issue 11) through the CLI, as a
student who reads only the README and ``--help`` would use them.

Passing tests pin what works (located errors, gradients against our own NumPy finite
differences, ties, entrywise lines, vectorized code); every reproducible problem found
is a test marked ``xfail(strict=True)`` with the problem in its reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main

LOCATED = re.compile(r"\.chain:\d+:\d+: error: ")


def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, *args: str):  # noqa: ANN201
    """Write ``model`` to m.chain, run ``chainrule CMD m.chain ARGS`` in-process: (rc, out, err)."""
    path = tmp_path / "m.chain"
    path.write_text(model)
    command, *rest = args
    rc = main([command, str(path), *rest])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def conv2d_loop(X: np.ndarray, K: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """PyTorch's conv2d (cross-correlation) by direct loops, one example."""
    X = np.pad(X, ((0, 0), (padding, padding), (padding, padding)))
    F, _, kh, kw = K.shape
    H = (X.shape[1] - kh) // stride + 1
    W = (X.shape[2] - kw) // stride + 1
    Y = np.zeros((F, H, W))
    for f in range(F):
        for i in range(H):
            for j in range(W):
                window = X[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
                Y[f, i, j] = np.sum(window * K[f])
    return Y


def conv1d_loop(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """PyTorch's conv1d without stride or padding, one example."""
    return np.stack(
        [
            sum(np.correlate(X[c], K[f, c], "valid") for c in range(X.shape[0]))
            for f in range(K.shape[0])
        ]
    )


def finite_differences(loss, point: dict, name: str, h: float = 1e-6) -> np.ndarray:  # noqa: ANN001
    """Central differences of ``loss(point)`` in ``point[name]``, float64."""
    out = np.zeros_like(point[name])
    for idx in np.ndindex(out.shape):
        plus = {k: np.array(v, dtype=float) for k, v in point.items()}
        minus = {k: np.array(v, dtype=float) for k, v in point.items()}
        plus[name][idx] += h
        minus[name][idx] -= h
        out[idx] = (loss(plus) - loss(minus)) / (2 * h)
    return out


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b) + 1e-300)))


# --- models written by hand ----------------------------------------------------------

STRIDE_PADDING = """\
param K[2, 2, 3, 3], b[2], v[18]
input X[2, 5, 5], t
Y = conv2d(X, K, b, stride=2, padding=1)
H = tanh(Y)
h = flatten(H)
L = (dot(v, h) - t)^2
loss L
"""

CONV1D_POOLS = """\
param K[3, 2, 2]
input X[2, 9], t
Y = conv1d(X, K)
H = relu(Y)
P = maxpool1d(H, 2)
Q = avgpool1d(H, 3)
L = (sum(P) + sum(Q) - t)^2
loss L
"""

TWO_LAYERS_ODD_POOL = """\
param K1[2, 1, 3, 3], K2[3, 2, 2, 2]
input X[1, 7, 7], t
Y1 = conv2d(X, K1, padding=1)
H1 = sigma(Y1)
P1 = avgpool2d(H1, 3)
Y2 = conv2d(P1, K2)
L = (mean(Y2) - t)^2
loss L
"""

GLOBAL_AVERAGE_POOL = """\
param K[4, 2, 3, 3], b[4], V[3, 4], c[3]
input X[2, 6, 6], t[3]
Y = conv2d(X, K, b, padding=1)
H = relu(Y)
G = avgpool2d(H, 6)
g = flatten(G)
u = V @ g + c
y = softmax(u)
L = -sum(t * log(y))
loss L
"""

ENTRYWISE = """\
param K1[2, 1, 3, 3], K2[2, 1, 3, 3], A[2, 4, 4]
input X[1, 6, 6], t
Y1 = conv2d(X, K1)
Y2 = conv2d(X, K2)
Z = Y1 * Y2 + A * sigma(Y1) - Y2 / 2
L = (sum(Z * Z) - t)^2
loss L
"""

HELPER_NAMES = """\
param K[2, 1, 3, 3], conv_patches
input X[1, 6, 6], t
X_patches = conv2d(X, K)
H = relu(X_patches) * conv_patches
L = (sum(H) - t)^2
loss L
"""

NAMED_POOL = """\
param K[2, 1, 3, 3]
input X[1, 6, 6], t
Y = conv2d(X, K)
P = maxpool2d(Y, 2)
L = (sum(P) - t)^2
loss L
"""

HEADER = "param K[2, 1, 3, 3], b[2]\ninput X[1, 6, 6], t\n"


# --- what works -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "param K[2, 3, 3, 3]\ninput X[1, 6, 6], t\nL = (sum(conv2d(X, K)) - t)^2\nloss L\n",
            "conv2d: K has 3 input channels, X has 1",
        ),
        (
            "param K[2, 1, 7, 7]\ninput X[1, 6, 6], t\nL = (sum(conv2d(X, K)) - t)^2\nloss L\n",
            "larger than the input",
        ),
        (
            "param K[2, 1, 3, 3], b[3]\ninput X[1, 6, 6], t\n"
            "L = (sum(conv2d(X, K, b)) - t)^2\nloss L\n",
            "bias",
        ),
        (HEADER + "L = (sum(conv2d(X, K, stride=0)) - t)^2\nloss L\n", "stride="),
        (HEADER + "L = (sum(conv2d(X, K, stride=1.5)) - t)^2\nloss L\n", "stride="),
        (HEADER + "L = (sum(conv2d(X, K, padding=-2)) - t)^2\nloss L\n", "padding="),
        (HEADER + "L = (sum(conv2d(X, K, strides=2)) - t)^2\nloss L\n", "strides"),
        (HEADER + "L = (sum(conv2d(X, K, stride=2, stride=1)) - t)^2\nloss L\n", "twice"),
        (HEADER + "L = (sum(conv2d(X, stride=2, K)) - t)^2\nloss L\n", "positional"),
        (
            "param K[2, 1, 3, 3, 1]\ninput X[1, 6, 6], t\nL = sum(conv2d(X, K)) * t\nloss L\n",
            "four axes",
        ),
        (
            "param K[2, 1, 3, 3]\ninput X[1, 6, 6], t\nL = sum(maxpool2d(X, 7)) * t\nloss L\n",
            "pool",
        ),
    ],
)
def test_bad_conv_use_is_a_located_error(tmp_path, capsys, model, message) -> None:
    rc, _, err = cli(tmp_path, capsys, model, "derive", "--method", "backprop")
    assert rc == 2
    assert LOCATED.search(err), err
    assert message in err


@pytest.mark.parametrize(
    "model",
    [
        STRIDE_PADDING,
        CONV1D_POOLS,
        TWO_LAYERS_ODD_POOL,
        GLOBAL_AVERAGE_POOL,
        ENTRYWISE,
        HELPER_NAMES,
    ],
    ids=[
        "stride_padding",
        "conv1d_pools",
        "two_layers_odd_pool",
        "gap",
        "entrywise",
        "helper_names",
    ],
)
def test_check_grad_passes_on_hand_written_cnns(tmp_path, capsys, model) -> None:
    rc, out, _ = cli(tmp_path, capsys, model, "check-grad", "--points", "2", "--no-signals")
    assert rc == 0, out
    assert "PASS" in out


def test_grad_stride_padding_equals_numpy_finite_differences(tmp_path, capsys) -> None:
    rng = np.random.default_rng(3)
    point = {
        "K": rng.normal(size=(2, 2, 3, 3)),
        "b": rng.normal(size=2),
        "v": rng.normal(size=18),
        "X": rng.normal(size=(2, 5, 5)),
        "t": np.array(0.7),
    }

    def loss(p: dict) -> float:
        Y = conv2d_loop(p["X"], p["K"], stride=2, padding=1) + p["b"][:, None, None]
        return float((p["v"] @ np.tanh(Y).ravel() - p["t"]) ** 2)

    at = tmp_path / "point.json"
    at.write_text(json.dumps({k: v.tolist() for k, v in point.items()}))
    rc, out, _ = cli(
        tmp_path, capsys, STRIDE_PADDING, "grad", "--at-file", str(at), "--format", "json"
    )
    assert rc == 0
    result = json.loads(out)
    assert result["loss"] == pytest.approx(loss(point), rel=1e-12)
    for name in ("K", "b", "v"):
        assert (
            rel_error(np.array(result["gradient"][name]), finite_differences(loss, point, name))
            < 1e-6
        )


def test_grad_conv1d_and_odd_pools_equal_numpy_finite_differences(tmp_path, capsys) -> None:
    rng = np.random.default_rng(1)
    point = {"K": rng.normal(size=(3, 2, 2)), "X": rng.normal(size=(2, 9)), "t": np.array(0.3)}

    def loss(p: dict) -> float:
        H = np.maximum(conv1d_loop(p["X"], p["K"]), 0)  # (3, 8)
        P = H[:, :8].reshape(3, 4, 2).max(-1)
        Q = H[:, :6].reshape(3, 2, 3).mean(-1)  # 8 // 3 = 2 groups, two entries dropped
        return float((P.sum() + Q.sum() - p["t"]) ** 2)

    at = tmp_path / "point.json"
    at.write_text(json.dumps({k: v.tolist() for k, v in point.items()}))
    rc, out, _ = cli(
        tmp_path, capsys, CONV1D_POOLS, "grad", "--at-file", str(at), "--format", "json"
    )
    assert rc == 0
    result = json.loads(out)
    assert result["loss"] == pytest.approx(loss(point), rel=1e-12)
    assert rel_error(np.array(result["gradient"]["K"]), finite_differences(loss, point, "K")) < 1e-6


def test_maxpool_tie_goes_to_first_maximum_per_channel(tmp_path, capsys) -> None:
    model = "param A[2, 5, 5]\ninput t\nP = maxpool2d(A, 2)\nL = sum(P * P) * t\nloss L\n"
    ones = json.dumps(np.ones((2, 5, 5)).tolist())
    rc, out, _ = cli(tmp_path, capsys, model, "grad", "--at", f"t=1,A={ones}", "--format", "json")
    assert rc == 0
    expected = np.zeros((2, 5, 5))
    expected[:, 0:4:2, 0:4:2] = 2.0  # first entry of each full 2×2 window; row/col 4 dropped
    np.testing.assert_array_equal(np.array(json.loads(out)["gradient"]["A"]), expected)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("[[[1, 2], [3]]]", "equal length"), (json.dumps(np.zeros(36).tolist()), "shape")],
)
def test_grad_wrong_at_shape_is_exit_2(tmp_path, capsys, value, fragment) -> None:
    rc, _, err = cli(tmp_path, capsys, NAMED_POOL, "grad", "--at", f"t=1,X={value}")
    assert rc == 2
    assert fragment in err


def test_derive_prints_strided_entrywise_kernel_bar(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, STRIDE_PADDING, "derive", "--method", "backprop")
    assert rc == 0
    assert "K̄[f,c,s,t] = Σ_{i,j} Ȳ[f,i,j] X[c,2i+s,2j+t]" in out
    assert "b̄[f] = Σ_{i,j} Ȳ[f,i,j]" in out
    assert "check: unit form agrees" in out


def test_derive_second_conv_layer_gets_full_convolution(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, TWO_LAYERS_ODD_POOL, "derive", "--method", "backprop")
    assert rc == 0
    assert "P̄⁽¹⁾ = Ȳ⁽²⁾ ∗_full K⁽²⁾" in out
    assert "avgpool_route2d(P̄⁽¹⁾, 3)" in out


def test_derive_shapes_show_tensor_axes(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, NAMED_POOL, "derive", "--method", "backprop", "--shapes")
    assert rc == 0
    assert "[2 × 1 × 3 × 3]" in out and "[2 × 2 × 2]" in out


def test_index_notation_refuses_tensors_with_exit_2(tmp_path, capsys) -> None:
    rc, _, err = cli(tmp_path, capsys, NAMED_POOL, "derive", "--notation", "index")
    assert rc == 2
    assert "4 axes" in err


def test_codegen_is_vectorized_and_renames_helper_collisions(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, HELPER_NAMES, "codegen")
    assert rc == 0
    body = out[out.index("def loss_and_grad") : out.index("def forward")]
    assert not re.search(r"^\s*(for|while) ", body, re.M)
    assert "conv_patches(X, 3, 3)" in body  # the helper is still called, the parameter renamed
    namespace: dict = {}
    exec(compile(out, "generated", "exec"), namespace)  # our own generated module
    rng = np.random.default_rng(0)
    params = {"K": rng.normal(size=(2, 1, 3, 3)), "conv_patches": 0.5}
    data = {"X": rng.normal(size=(4, 1, 6, 6)), "t": rng.normal(size=4)}
    loss, grads = namespace["loss_and_grad"](params, data)
    Y = [conv2d_loop(x, params["K"]) for x in data["X"]]
    expected = np.mean(
        [(np.sum(np.maximum(y, 0) * 0.5) - t) ** 2 for y, t in zip(Y, data["t"], strict=True)]
    )
    assert loss == pytest.approx(expected, rel=1e-12)
    assert grads["K"].shape == (2, 1, 3, 3)


# --- problems found (xfail strict) -----------------------------------------------------

INLINE_CONV = "param K[2, 1, 3, 3]\ninput X[1, 6, 6], t\nL = (sum(conv2d(X, K)) - t)^2\nloss L\n"
INLINE_POOL = (
    "param K[2, 1, 3, 3]\ninput X[1, 6, 6], t\nY = conv2d(X, K)\n"
    "L = (sum(maxpool2d(Y, 2)) - t)^2\nloss L\n"
)


def test_codegen_inline_conv2d(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, INLINE_CONV, "codegen")
    assert rc == 0 and "def loss_and_grad" in out


def test_check_grad_inline_conv2d(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, INLINE_CONV, "check-grad", "--points", "1", "--no-signals")
    assert rc == 0 and "PASS" in out


def test_codegen_inline_maxpool(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, INLINE_POOL, "codegen")
    assert rc == 0 and "def loss_and_grad" in out


def test_check_grad_no_false_failure_on_relu_maxpool_softmax(tmp_path, capsys) -> None:
    model = (
        "param K[2, 1, 3, 3], b[2], V[3, 8], c[3]\ninput X[1, 6, 6], t[3]\n"
        "H = relu(conv2d(X, K, b))\nh = flatten(maxpool2d(H, 2))\n"
        "y = softmax(V @ h + c)\nL = -sum(t * log(y))\nloss L\n"
    )
    rc, out, _ = cli(tmp_path, capsys, model, "check-grad", "--seed", "2")
    assert "band 'good'" in out  # the gradient itself is right
    assert rc == 0 and "PASS" in out


def test_derive_prints_maxpool1d_as_written(tmp_path, capsys) -> None:
    model = "param A[2, 7]\ninput t\np = maxpool1d(A, 2)\nL = sum(p) * t\nloss L\n"
    rc, out, _ = cli(tmp_path, capsys, model, "derive", "--method", "backprop")
    assert rc == 0
    assert "maxpool1d(A, 2)" in out
    assert "maxpool2d(A, 1)" not in out


def test_latex_of_maxpool_keeps_the_size(tmp_path, capsys) -> None:
    rc, out, _ = cli(
        tmp_path, capsys, NAMED_POOL, "derive", "--format", "json", "--method", "backprop"
    )
    assert rc == 0
    forward = {entry["name"]: entry for entry in json.loads(out)["forward"]}
    assert "2" in forward["P"]["latex"]


def test_derive_json_shapes_are_the_declared_axes(tmp_path, capsys) -> None:
    rc, out, _ = cli(
        tmp_path, capsys, NAMED_POOL, "derive", "--format", "json", "--method", "backprop"
    )
    assert rc == 0
    signals = {entry["node"]: entry for entry in json.loads(out)["backprop"]}
    assert [int(s) for s in signals["K"]["shape"]] == [2, 1, 3, 3]
    assert [int(s) for s in signals["P"]["shape"]] == [2, 2, 2]


def test_derive_json_has_entrywise_lines(tmp_path, capsys) -> None:
    rc, out, _ = cli(
        tmp_path, capsys, NAMED_POOL, "derive", "--format", "json", "--method", "backprop"
    )
    assert rc == 0
    assert "K̄[f,c,s,t]" in json.dumps(json.loads(out), ensure_ascii=False)


def test_padding_same_message_names_padding(tmp_path, capsys) -> None:
    model = HEADER + 'L = (sum(conv2d(X, K, padding="same")) - t)^2\nloss L\n'
    rc, _, err = cli(tmp_path, capsys, model, "derive")
    assert rc == 2 and LOCATED.search(err)
    assert "padding=" in err.splitlines()[0]  # the message line, not the echoed source


def test_derive_order_2_agrees_with_hessian(tmp_path, capsys) -> None:
    rc, out, _ = cli(tmp_path, capsys, NAMED_POOL, "derive", "--order", "2", "--method", "backprop")
    assert rc == 0
    assert "no second order" not in out


def test_check_grad_huge_tensor_is_a_located_error(tmp_path) -> None:
    path = tmp_path / "huge.chain"
    path.write_text(
        "param K[2, 1, 3, 3]\ninput X[1, 100000, 100000], t\n"
        "Y = conv2d(X, K)\nL = (sum(Y) - t)^2\nloss L\n"
    )
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from chainrule.cli import main\n"
        "sys.exit(main(['check-grad', sys.argv[1], '--points', '1']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 2


CONV_OUT = "param K[2, 1, 3, 3], b[2]\ninput X[1, 6, 6], t\nY = conv2d(X, K, b)\n"


def test_conv_of_a_tensor_is_a_located_error(tmp_path, capsys) -> None:
    rc, _, err = cli(tmp_path, capsys, CONV_OUT + "L = sum(conv(Y, Y)) * t\nloss L\n", "derive")
    assert rc == 2 and LOCATED.search(err)


def test_softmax_of_a_tensor_is_not_over_carrier_columns(tmp_path, capsys) -> None:
    at = tmp_path / "point.json"
    rng = np.random.default_rng(0)
    point = {"K": rng.normal(size=(2, 1, 3, 3)), "b": [0.1, 0.2], "X": rng.normal(size=(1, 6, 6))}
    at.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in point.items()} | {"t": 1.0}))
    model = CONV_OUT + "L = sum(softmax(Y)) * t\nloss L\n"
    rc, out, err = cli(tmp_path, capsys, model, "grad", "--at-file", str(at), "--format", "json")
    if rc == 2:  # refusing is fine when it is located
        assert LOCATED.search(err)
    else:
        assert json.loads(out)["loss"] == pytest.approx(1.0)


def test_max_of_a_feature_map_reduces_it(tmp_path, capsys) -> None:
    model = "param K[1, 1, 2, 2]\ninput X[1, 4, 5], t\nY = conv2d(X, K)\nL = max(Y) * t\nloss L\n"
    rc, out, err = cli(tmp_path, capsys, model, "derive", "--method", "backprop")
    assert rc == 0, err
    assert "check: unit form agrees" in out


def test_layernorm_of_a_feature_map_derives_quickly(tmp_path) -> None:
    path = tmp_path / "ln.chain"
    path.write_text(CONV_OUT + "L = sum(layernorm(Y, 0.001)) * t\nloss L\n")
    code = (
        "import sys\nfrom chainrule.cli import main\n"
        "sys.exit(main(['derive', sys.argv[1], '--method', 'backprop']))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=6
        )
    except subprocess.TimeoutExpired:
        pytest.fail("derive did not finish in 6 s")
    assert done.returncode in (0, 2)


def test_input_bar_with_stride_and_padding_is_spelled_out(tmp_path, capsys) -> None:
    model = (
        "param K1[2, 2, 3, 3], K2[3, 2, 2, 2]\ninput X[2, 8, 7], t\n"
        "Y1 = conv2d(X, K1)\nH1 = tanh(Y1)\nY2 = conv2d(H1, K2, stride=3, padding=1)\n"
        "L = sum(Y2) * t\nloss L\n"
    )
    rc, out, _ = cli(tmp_path, capsys, model, "derive", "--method", "backprop")
    assert rc == 0
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("H̄⁽¹⁾ ="))
    assert "entrywise" in lines[at + 1]


def test_derive_maxpool2d_of_size_3(tmp_path, capsys) -> None:
    model = "param A[1, 6, 6]\ninput t\nP = maxpool2d(A, 3)\nL = sum(P) * t\nloss L\n"
    rc, out, err = cli(tmp_path, capsys, model, "derive", "--method", "backprop")
    assert rc == 0, err
    assert "check: unit form agrees" in out


def test_grad_cnn_digits_needs_no_at(capsys) -> None:
    rc = main(["grad", "cnn_digits"])
    out = capsys.readouterr().out
    assert rc == 0 and "L = " in out


def test_softmax_note_in_lecture_notation(tmp_path, capsys) -> None:
    model = (
        "param V[3, 4], c[3]\ninput h[4], t[3]\nu = V @ h + c\ny = softmax(u)\n"
        "L = -sum(t * log(y))\nloss L\n"
    )
    rc, out, _ = cli(tmp_path, capsys, model, "derive", "--method", "backprop")
    assert rc == 0
    assert "ū = L̄ (y − t)" in out
    assert "u_bar" not in out
