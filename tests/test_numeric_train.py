"""Training: XOR to 100 %, data loading and mapping, divergence, early stopping."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule
from chainrule.numeric.data import (
    DataError,
    load_csv,
    load_dataset,
    load_npz,
    model_data,
    one_hot,
    parse_map,
    xor,
)
from chainrule.numeric.train import (
    TrainConfig,
    TrainingDiverged,
    init_params,
    output_nodes,
    train,
    write_history,
)

LINEAR = "param w, b\ninput x, t\ny = w*x + b\nL = (y - t)^2/2\nloss L"


def test_xor_reaches_full_accuracy_from_fixed_seed() -> None:
    r = train("xor", xor(), TrainConfig(epochs=400, lr=2.0, batch=4, seed=3))
    assert r.history["epochs"][-1]["accuracy"] == 1.0
    assert r.history["epochs"][-1]["loss"] < 0.1
    again = train("xor", xor(), TrainConfig(epochs=400, lr=2.0, batch=4, seed=3))
    assert all(np.array_equal(r.params[k], again.params[k]) for k in r.params)


def test_init_is_seeded_and_never_all_zeros() -> None:
    prog = chainrule.load("xor")
    a, b = init_params(prog, seed=0), init_params(prog, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert len({float(v) for v in a.values()}) == len(a)  # symmetry broken


def test_output_nodes_found() -> None:
    assert output_nodes(chainrule.load("xor")) == ["y"]
    assert output_nodes(chainrule.load("softmax_regression")) == ["y1", "y2", "y3"]


def test_unit_form_softmax_targets_are_one_hot() -> None:
    prog = chainrule.load("softmax_regression")
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    ds = load_dataset("xor")
    ds.columns = {"x1": X[:, 0], "x2": X[:, 1], "target": np.array([0.0, 2.0, 1.0])}
    ds.classes = [0, 1, 2]
    data = model_data(prog, ds)
    assert data["t1"].tolist() == [1, 0, 0] and data["t3"].tolist() == [0, 1, 0]


def test_divergence_stops_with_clear_message() -> None:
    X = np.linspace(-100, 100, 20)
    data = {"x": X, "t": 3 * X}
    with pytest.raises(TrainingDiverged, match="smaller --lr"):
        train(chainrule.parse(LINEAR), data, TrainConfig(epochs=200, lr=10.0, batch=20))


def test_momentum_decay_and_early_stopping() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal(60)
    data = {"x": X, "t": 2 * X + 1 + 0.01 * rng.standard_normal(60)}
    cfg = TrainConfig(
        epochs=300,
        lr=0.05,
        batch=10,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="step",
        val_split=0.25,
        patience=5,
    )
    r = train(chainrule.parse(LINEAR), data, cfg)
    assert abs(float(r.params["w"]) - 2) < 0.05 and abs(float(r.params["b"]) - 1) < 0.05
    assert r.stopped.startswith("early stopping")
    assert r.best_epoch is not None and "val_loss" in r.history["epochs"][0]


def test_history_json_and_csv(tmp_path) -> None:  # noqa: ANN001
    r = train("xor", xor(), TrainConfig(epochs=3, lr=1.0, batch=4))
    write_history(r.history, str(tmp_path / "h.json"))
    write_history(r.history, str(tmp_path / "h.csv"))
    h = json.loads((tmp_path / "h.json").read_text())
    assert [e["epoch"] for e in h["epochs"]] == [1, 2, 3]
    assert {"loss", "accuracy"} <= set(h["epochs"][0])
    assert (tmp_path / "h.csv").read_text().startswith("epoch,loss,accuracy")


def test_csv_and_npz_loading(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "d.csv").write_text("a,b,label\n0,0,no\n0,1,yes\n1,0,yes\n1,1,no\n")
    ds = load_csv(tmp_path / "d.csv")
    assert ds.feature_names == ["a", "b"] and ds.classes == ["no", "yes"]
    data = model_data(chainrule.load("xor"), ds, parse_map("x1=b,x2=a"))
    assert data["x1"].tolist() == [0, 1, 0, 1] and data["t"].tolist() == [0, 1, 1, 0]
    np.savez(tmp_path / "d.npz", X=np.eye(2), t=np.array([0, 1]))
    nz = load_npz(tmp_path / "d.npz")
    assert nz.feature_names == ["x1", "x2"] and nz.target.tolist() == [0, 1]
    with pytest.raises(DataError, match="no column"):
        model_data(chainrule.load("xor"), ds, parse_map("x1=zzz"))
    with pytest.raises(DataError):
        load_dataset(str(tmp_path / "missing.csv"))


def test_one_hot() -> None:
    assert one_hot(np.array([2.0, 0.0]), [0, 1, 2], 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(DataError):
        one_hot(np.array([0.0, 1.0, 2.0]), None, 2)


def test_sklearn_sets_when_installed() -> None:
    pytest.importorskip("sklearn")
    ds = load_dataset("digits")
    assert ds.features.shape == (1797, 64) and ds.features.max() <= 1.0
    assert ds.classes == list(range(10))
