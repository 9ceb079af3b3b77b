"""The command line end to end: outputs, JSON, golden numbers and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="160")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "hierro", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_estimate_default_prints_tables() -> None:
    r = run("estimate")
    assert r.returncode == 0, r.stderr
    for text in ("TTFT", "TPOT", "output tokens/s per GPU", "memory per GPU", "decode step", "attn.decode"):
        assert text in r.stdout


def test_estimate_json_matches_golden() -> None:
    r = run("estimate", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    golden = json.loads((GOLDEN / "estimate_default.json").read_text())
    for key in ("model", "gpu", "plan", "gpus", "isl", "osl", "concurrency", "max_concurrency"):
        assert got[key] == golden[key], key
    # a change to the perf model shows up here: regenerate the golden file on purpose
    for key in ("ttft_ms", "tpot_ms", "out_tok_s_per_gpu", "e2e_ms"):
        assert got[key] == pytest.approx(golden[key], rel=1e-6), key
    assert {op["name"] for op in got["decode_step"]["ops"]} >= {"lm_head", "comm.tp_allreduce"}


def test_estimate_names_the_engines_step_policy() -> None:
    """SGLang's prefill-only steps make its decodes wait: the estimate says so and prices it."""
    vllm, sglang = (json.loads(run("estimate", "--framework", fw, "--json").stdout) for fw in ("vllm", "sglang"))
    assert vllm["prefill_in_decode_steps"] is True and sglang["prefill_in_decode_steps"] is False
    assert "prefill-only steps first" in run("estimate", "--framework", "sglang").stdout


def test_estimate_offline_and_moe_plan() -> None:
    r = run("estimate", "--model", "deepseek-r1", "--gpu", "h200-sxm", "--tp", "8", "--ep", "8",
            "--dp-attention", "--offline", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["setting"] == "offline" and d["out_tok_s_per_gpu"] > 0
    assert any(op["name"] == "comm.ep_alltoall" for op in d["decode_step"]["ops"])


@pytest.mark.parametrize("kind", ["gpus", "systems", "models"])
def test_catalog_lists_with_sources(kind: str) -> None:
    r = run("catalog", kind, "--json")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    assert len(items) >= 20
    assert all(item.get("source") or item.get("peak_flops") for item in items)


def test_validate_json_shape(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "hierro" / "accuracy" / "data" / "calibration.csv"
    lines = src.read_text().splitlines()
    # header + a handful of aggregated concurrency rows
    pick = [ln for ln in lines[1:] if ",aggregated," in ln and ",concurrency," in ln and "duplicate_of" not in ln][:5]
    f = tmp_path / "m.csv"
    f.write_text("\n".join([lines[0], *pick]) + "\n")
    r = run("validate", str(f), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) == {"rows", "skipped", "summary"}
    assert d["rows"] and set(d["rows"][0]) == {"id", "metric", "measured", "predicted", "lo", "hi"}


BAD = [
    (("estimate", "--model", "llama-3.1-70"), "llama-3.1-70b"),
    (("estimate", "--gpu", "h100"), "h100-sxm"),
    (("estimate", "--tp", "3"), "64 attention heads"),
    (("estimate", "--model", "mixtral-8x7b", "--tp", "8", "--ep", "16"), "ep=16"),
    (("estimate", "--model", "llama-3.1-405b", "--tp", "1", "--dtype", "bf16"), "does not fit"),
    (("estimate", "--isl", "0"), "isl"),
    (("estimate", "--mem-fraction", "5"), "mem-fraction"),
    (("validate", "/nonexistent.csv"), "nonexistent"),
]


@pytest.mark.parametrize(("args", "needle"), BAD)
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], needle: str) -> None:
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in err
    assert needle in err
    assert len(err.splitlines()) == 1, err


def test_malformed_config_json_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"num_hidden_layers": 2,')
    r = run("estimate", "--model", str(bad))
    assert r.returncode == 2 and "config.json" in r.stderr and "line" in r.stderr
    bad.write_text(json.dumps({"num_hidden_layers": 2, "vocab_size": 10, "num_attention_heads": 2}))
    r = run("estimate", "--model", str(bad))
    assert r.returncode == 2 and "hidden_size" in r.stderr


def test_local_config_json_imports(tmp_path: Path) -> None:
    cfg = {
        "model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
        "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = run("estimate", "--model", str(tmp_path / "config.json"), "--tp", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tpot_ms"] > 0


def test_calibrate_writes_a_calibration_that_validate_reads(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "hierro" / "accuracy" / "data" / "calibration.csv"
    lines = src.read_text().splitlines()
    pick = [ln for ln in lines[1:] if ",llama-3.1-70b," in ln and ",concurrency," in ln
            and "random:0.8" in ln and "duplicate_of" not in ln][:12]
    f = tmp_path / "m.csv"
    f.write_text("\n".join([lines[0], *pick]) + "\n")
    out = tmp_path / "fit.yaml"
    r = run("calibrate", str(f), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file() and not list(tmp_path.glob(".fit.yaml.*"))
    # the table names each fitted number once, the roofline's exposed share of the rows' engine too
    fitted = [ln.split("│")[1].strip() for ln in r.stdout.splitlines() if ln.count("│") >= 3]
    assert any(name.endswith(".roofline.exposed") for name in fitted), fitted
    assert len(fitted) == len(set(fitted))
    r = run("validate", str(f), "--calibration", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"]


def test_validate_reports_corrupted_rows_and_continues(tmp_path: Path) -> None:
    """Missing model, negative throughput, unparsable number, unknown column: each bad row is
    reported with its line and the rest is validated; output is identical across runs."""
    src = Path(__file__).resolve().parents[1] / "src" / "hierro" / "accuracy" / "data" / "calibration.csv"
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    good = [ln for ln in lines[1:] if ",llama-3.1-70b," in ln and ",concurrency," in ln
            and "random:0.8" in ln and "duplicate_of" not in ln][:4]
    import csv
    import io

    def edit(line: str, column: str, value: str) -> str:
        cells = next(csv.reader([line]))
        cells[header.index(column)] = value
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(cells)
        return buf.getvalue()

    bad = [edit(good[0], "model", ""), edit(good[1], "tpot_mean_ms", "-3"), edit(good[2], "ttft_mean_ms", "abc")]
    text = "\n".join([lines[0] + ",extra", *[ln + "," for ln in [*bad, good[3]]]]) + "\n"
    f = tmp_path / "corrupt.csv"
    f.write_text(text)
    r1 = run("validate", str(f), "--json")
    assert r1.returncode == 0, r1.stderr
    d = json.loads(r1.stdout)
    reasons = " | ".join(s["reason"] for s in d["skipped"])
    for needle in ("line 2", "line 3", "line 4", "model", "tpot_mean_ms", "ttft_mean_ms", "unknown column"):
        assert needle in reasons, needle
    assert d["rows"], "the good row is still validated"
    r2 = run("validate", str(f), "--json")
    assert r2.stdout == r1.stdout
