"""`mirror-align probe` and `demo` through the real `main([...])`: happy paths and one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from mirror_align.cli import main

# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def features(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    u = rng.normal(size=(n, 16)).astype(np.float32)
    e = (u @ rng.normal(size=(16, 12)) + 0.1 * rng.normal(size=(n, 12))).astype(np.float32)
    np.save(tmp_path / "u.npy", u)
    np.savez(tmp_path / "e.npz", feats=e)
    save_file({"u": u}, str(tmp_path / "u.safetensors"))
    episode = np.arange(n) // 2
    np.savez(
        tmp_path / "keys.npz",
        episode_id=episode,
        instruction_id=episode % 40,
        task_id=episode % 40 // 10,
    )
    return tmp_path, u, e


def _probe_args(tmp_path, *extra):
    return [
        "probe",
        "--dim",
        "32",
        "--max-epochs",
        "5",
        "--out",
        str(tmp_path / "result.json"),
        *extra,
    ]


REQUIRED = (
    "recall_at_1",
    "recall_at_1_u2e",
    "recall_at_1_e2u",
    "chance",
    "mi_lower_bound_nats",
    "n_train",
    "n_test",
    "pairing",
    "tau",
    "mutual_knn",
    "cka_linear",
    "cka_unbiased",
)


def test_probe_happy_path_writes_result(features, capsys):
    tmp_path, _, _ = features
    code = main(
        _probe_args(
            tmp_path,
            "--u",
            str(tmp_path / "u.safetensors"),
            "--e",
            str(tmp_path / "e.npz"),
            "--keys",
            str(tmp_path / "keys.npz"),
            "--pairing",
            "episode",
            "--tau",
            "0.2",
            "--max-epochs",
            "40",
        )
    )
    assert code == 0
    record = json.loads((tmp_path / "result.json").read_text())
    for name in REQUIRED:
        assert name in record, name
    assert record["pairing"] == "episode" and record["tau"] == pytest.approx(0.2)
    assert record["n_train"] + record["n_val"] + record["n_test"] == 400
    assert record["recall_at_1"] > 10 * record["chance"]
    assert "Recall@1" in capsys.readouterr().err


def test_probe_without_keys_pairs_rows(features):
    tmp_path, _, _ = features
    args = _probe_args(tmp_path, "--u", str(tmp_path / "u.npy"), "--e", str(tmp_path / "e.npz"))
    assert main(args) == 0
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["chance"] == pytest.approx(1.0 / record["n_test"])
    assert record["inputs"]["keys"] is None


def _error(capsys, args):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("mirror-align probe: error:"), err
    return err[0]


def test_probe_rejects_differing_row_counts(features, capsys):
    tmp_path, _, e = features
    np.save(tmp_path / "short.npy", e[:-3])
    line = _error(
        capsys,
        _probe_args(tmp_path, "--u", str(tmp_path / "u.npy"), "--e", str(tmp_path / "short.npy")),
    )
    assert "400 rows" in line and "397" in line
    assert not (tmp_path / "result.json").exists()


def test_probe_rejects_nan(features, capsys):
    tmp_path, u, _ = features
    bad = u.copy()
    bad[7, 3] = np.nan
    bad[9, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    line = _error(
        capsys,
        _probe_args(tmp_path, "--u", str(tmp_path / "bad.npy"), "--e", str(tmp_path / "e.npz")),
    )
    assert "NaN/inf" in line and "row 7" in line and "--u" in line


def test_probe_rejects_missing_key_array(features, capsys):
    tmp_path, _, _ = features
    np.savez(
        tmp_path / "partial.npz", episode_id=np.arange(400), task_id=np.zeros(400, dtype=np.int64)
    )
    args = _probe_args(
        tmp_path,
        "--u",
        str(tmp_path / "u.npy"),
        "--e",
        str(tmp_path / "e.npz"),
        "--keys",
        str(tmp_path / "partial.npz"),
    )
    line = _error(capsys, args)
    assert "'instruction_id'" in line and "episode_id, instruction_id, task_id" in line


def test_probe_rejects_unknown_suffix_and_missing_file(features, capsys):
    tmp_path, _, _ = features
    (tmp_path / "u.csv").write_text("1,2\n")
    line = _error(
        capsys,
        _probe_args(tmp_path, "--u", str(tmp_path / "u.csv"), "--e", str(tmp_path / "e.npz")),
    )
    assert "'.csv'" in line and ".npy, .npz, .safetensors" in line
    line = _error(
        capsys,
        _probe_args(tmp_path, "--u", str(tmp_path / "nope.npy"), "--e", str(tmp_path / "e.npz")),
    )
    assert "file not found" in line
    (tmp_path / "text.npy").write_text("not an array\n")  # numpy would read it as a pickle
    line = _error(
        capsys,
        _probe_args(tmp_path, "--u", str(tmp_path / "text.npy"), "--e", str(tmp_path / "e.npz")),
    )
    assert "is not a NumPy .npy file" in line and "pickle" not in line


def test_probe_rejects_wrong_key_length(features, capsys):
    tmp_path, _, _ = features
    np.savez(
        tmp_path / "short_keys.npz",
        episode_id=np.arange(10),
        instruction_id=np.arange(10),
        task_id=np.arange(10),
    )
    args = _probe_args(
        tmp_path,
        "--u",
        str(tmp_path / "u.npy"),
        "--e",
        str(tmp_path / "e.npz"),
        "--keys",
        str(tmp_path / "short_keys.npz"),
    )
    assert "length 400" in _error(capsys, args)


def test_demo_writes_files_and_table(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--n", "1200", "--rho", "0.0", "0.9", "--dim", "32"])
    assert code == 0
    summary = json.loads((out / "demo.json").read_text())
    rows = summary["rows"]
    assert [r["rho"] for r in rows] == [0.0, 0.9]
    assert rows[0]["true_mi_nats"] == 0.0
    assert rows[1]["mi_lower_bound_nats"] > rows[0]["mi_lower_bound_nats"] + 1.0
    for row in rows:
        assert row["mi_lower_bound_nats"] <= min(row["true_mi_nats"], row["log_b"]) + 0.2
    assert (out / "rho_0.90" / "u.npy").is_file() and (out / "rho_0.90" / "keys.npz").is_file()
    printed = capsys.readouterr().out
    assert "true MI" in printed and "k-NN" in printed and "CKA" in printed
    # rho = 0: independent features sit at their chance levels; rho = 0.9: far above.
    assert rows[0]["mutual_knn"] < 3 * rows[0]["mutual_knn_chance"]
    assert rows[1]["mutual_knn"] > 3 * rows[1]["mutual_knn_chance"]


def test_probe_refuses_a_test_split_too_small_for_knn_and_cka(tmp_path, capsys):
    """Issue 14.6: 10 rows of two independent feature files split off a 2-row test set, on which
    mutual k-NN and CKA are 1.000 whatever the data. Refuse in one line, before any training."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "u.npy", rng.normal(size=(10, 8)).astype(np.float32))
    np.save(tmp_path / "e.npy", rng.normal(size=(10, 6)).astype(np.float32))
    args = _probe_args(tmp_path, "--u", str(tmp_path / "u.npy"), "--e", str(tmp_path / "e.npy"))
    line = _error(capsys, args)
    assert "test split holds 2 row(s) of 10" in line and ">= 12" in line and "--knn-k" in line
    assert not (tmp_path / "result.json").exists()
    # With k = 2 the minimum is 4: still too few rows here.
    assert "need >= 4" in _error(capsys, args + ["--knn-k", "2"])
    assert "--knn-k: must be >= 1" in _error(capsys, args + ["--knn-k", "0"])


def test_probe_prints_every_metrics_chance_level(features, capsys):
    tmp_path, _, _ = features
    args = _probe_args(tmp_path, "--u", str(tmp_path / "u.npy"), "--e", str(tmp_path / "e.npz"))
    assert main(args + ["--knn-k", "5"]) == 0
    err = capsys.readouterr().err.splitlines()
    line = next(x for x in err if x.startswith("probe: Recall@1"))
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["mutual_knn_k"] == 5
    assert record["mutual_knn_chance"] == pytest.approx(5 / (record["n_test"] - 1))
    assert (
        f"mutual k-NN@5 {record['mutual_knn']:.3f} (chance {5 / (record['n_test'] - 1):.3f})"
        in line
    )
    assert (
        f"CKA linear {record['cka_linear']:.3f} (chance {record['cka_linear_chance']:.3f})" in line
    )
    # Correlated features: both training-free metrics far above their chance levels.
    assert record["mutual_knn"] > 3 * record["mutual_knn_chance"]
    assert record["cka_linear"] > record["cka_linear_chance"] + 0.3


def test_a_closed_stdout_ends_the_command_quietly():
    """`mirror-align tasks --json | head`: the reader leaves before the command writes (`true`
    exits at once, the command imports for a second); no traceback."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        f"'{sys.executable}' -m mirror_align.cli tasks --json | true",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
