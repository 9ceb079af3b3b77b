"""``train_cmd`` end to end through a local typer app (exit 2 and one line on bad input)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from hierro.cli.train import parse_days, train_cmd
from hierro.errors import HierroError

app = typer.Typer()
app.command("train")(train_cmd)
app.command("noop")(lambda: None)


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["train", *args])
    if isinstance(r.exception, HierroError):
        return 2, str(r.exception)
    return r.exit_code, r.stdout


def test_parse_days() -> None:
    assert parse_days("90d") == 90 and parse_days("2w") == 14 and parse_days("36h") == 1.5


def test_train_json() -> None:
    code, text = _invoke("--model", "llama-3.1-70b", "--tokens", "2e12", "--gpus", "1024", "--json")
    assert code == 0, text
    d = json.loads(text)
    assert 0.2 < d["mfu"] < 0.7 and d["gpu_hours"] > 0 and "TCO" in d["price_source"]


def test_train_tables_with_deadline() -> None:
    code, text = _invoke("--model", "llama-3.1-70b", "--tokens", "2e12", "--gpus", "1024", "--deadline", "30d")
    assert code == 0, text
    assert "MFU" in text and "goodput" in text and "to finish in 30 days" in text


def test_train_bad_layout_exit_2() -> None:
    code, text = _invoke("--gpus", "1000", "--tp", "8", "--pp", "16", "--dp", "8")
    assert code == 2 and "\n" not in text


def test_train_does_not_fit_exit_2() -> None:
    code, text = _invoke("--model", "llama-3.1-405b", "--gpus", "8")
    assert code == 2 and "does not fit" in text and "\n" not in text


def test_train_overlap_option() -> None:
    base = ["--model", "deepseek-v3", "--tokens", "1e12", "--gpu", "h800", "--gpus", "2048",
            "--seq-len", "4096", "--dtype", "fp8", "--json"]
    code, plain = _invoke(*base)
    assert code == 0, plain
    code, hidden = _invoke(*base, "--overlap", "ep")
    assert code == 0, hidden
    assert json.loads(hidden)["gpu_hours"] < json.loads(plain)["gpu_hours"]  # wide EP pays off once hidden
    code, text = _invoke(*base, "--overlap", "dp")
    assert code == 2 and "--overlap" in text


def test_train_recipe_options() -> None:
    base = ["--model", "deepseek-v3", "--tokens", "1e12", "--gpu", "h800", "--gpus", "2048",
            "--seq-len", "4096", "--dtype", "fp8", "--json"]
    code, text = _invoke(*base, "--adam-moments", "bf16", "--low-precision-acts")
    assert code == 0, text
    lay = json.loads(text)["layout"]
    assert lay["adam_moments"] == "bf16" and lay["low_precision_acts"] is True
    code, text = _invoke(*base[:-3], "--low-precision-acts")
    assert code == 2 and "fp8" in text and "\n" not in text
    code, text = _invoke(*base, "--adam-moments", "fp16")
    assert code == 2 and "--adam-moments" in text
    code, text = _invoke(*base, "--schedule", "gpipe")
    assert code == 2 and "--schedule" in text


def test_train_deepseek_v3_published_layout_fits() -> None:
    # arXiv:2412.19437 §3.2-3.3: DualPipe PP16, EP64, ZeRO-1 DP128, bf16 moments, FP8 activations
    lay = ["--tp", "1", "--pp", "16", "--dp", "128", "--ep", "64", "--schedule", "dualpipe"]
    base = ["--model", "deepseek-v3", "--tokens", "14.8e12", "--gpu", "h800", "--gpus", "2048",
            "--seq-len", "4096", "--batch-tokens", str(15360 * 4096), "--dtype", "fp8",
            "--overlap", "ep", *lay, "--json"]
    code, text = _invoke(*base, "--adam-moments", "bf16", "--low-precision-acts")
    assert code == 0, text
    assert json.loads(text)["memory_per_gpu_gb"]["total"] < 80
    code, text = _invoke(*base)
    assert code == 2 and "needs" in text and "\n" not in text


def test_train_reports_compute_optimal_and_checkpoint() -> None:
    code, text = _invoke("--model", "llama-3.1-405b", "--tokens", "15.6e12", "--gpus", "16384", "--json")
    assert code == 0, text
    d = json.loads(text)
    chin = d["compute_optimal"]["chinchilla"]
    # Chinchilla at Llama 3 405B's 6ND: N = sqrt(C / 120), D = 20 N; Llama 3 trained ~38 tokens/param
    assert chin["tokens"] == pytest.approx(20 * chin["params"])
    assert 6 * chin["params"] * chin["tokens"] == pytest.approx(d["flops_6nd"])
    assert 35 < d["tokens_per_param"] < 42
    assert d["compute_optimal"]["llama-3-405b"]["params"] == pytest.approx(405e9, rel=0.01)
    assert d["reliability"]["checkpoint_bytes_per_param"] == 14.0
    code, text = _invoke("--model", "llama-3.1-405b", "--tokens", "15.6e12", "--gpus", "16384")
    assert code == 0 and "compute-optimal" in text and "B/param" in text


def test_train_fp8_scaling_and_fixed_layout_options() -> None:
    base = ["--model", "llama-3.1-70b", "--tokens", "1e12", "--gpus", "1024", "--dtype", "fp8",
            "--tp", "8", "--pp", "4", "--vpp", "5", "--micro-batch", "2", "--usd-per-gpu-hour", "2", "--json"]
    code, text = _invoke(*base)
    assert code == 0, text
    tensor = json.loads(text)
    assert (tensor["layout"]["vpp"], tensor["layout"]["micro_batch"]) == (5, 2)
    code, text = _invoke(*base, "--fp8-scaling", "block")
    assert code == 0, text
    block = json.loads(text)
    assert block["layout"]["fp8_scaling"] == "block" and block["gpu_hours"] > tensor["gpu_hours"]
    code, text = _invoke("--fp8-scaling", "block")
    assert code == 2 and "--dtype fp8" in text and "\n" not in text
    code, text = _invoke(*base, "--fp8-scaling", "row")
    assert code == 2 and "--fp8-scaling" in text
    code, text = _invoke(*base[:-7], "--vpp", "25", "--json")  # 80 layers / 4 stages: 20 per stage
    assert code == 2 and "\n" not in text
