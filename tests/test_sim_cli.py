"""``simulate_cmd`` end to end through a local typer app: tables, --json shape, --out records,
and bad input (a one-line HierroError, exit 2 under the real CLI)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import hierro.cli.simulate as simulate_module
from hierro.cli.simulate import parse_seconds, parse_slo, simulate_cmd
from hierro.errors import HierroError
from hierro.sim import parquet_available

app = typer.Typer()
app.command("simulate")(simulate_cmd)
app.command("noop")(lambda: None)

SMALL = ("--qps", "4", "--requests", "200", "--isl", "1024", "--osl", "128")


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["simulate", *args])
    if isinstance(r.exception, HierroError):
        return 2, str(r.exception)
    return r.exit_code, r.stdout


def test_parsers() -> None:
    assert parse_seconds("40ms") == pytest.approx(0.04) and parse_seconds("2min") == 120.0
    s = parse_slo("ttft_p99=1s,tpot_p99=40ms")
    assert s.ttft_s == 1.0 and s.tpot_s == pytest.approx(0.04)


def test_simulate_tables() -> None:
    code, text = _invoke(*SMALL, "--slo", "ttft_p99=2s,tpot=50ms")
    assert code == 0, text
    for word in ("TTFT", "TPOT", "ITL", "end to end", "queueing", "p99.9", "goodput", "KV peak", "preemptions"):
        assert word in text


def test_simulate_json_shape() -> None:
    code, text = _invoke(*SMALL, "--replicas", "2", "--length-dist", "uniform:0.5", "--slo", "ttft_p99=1s",
                         "--json")
    assert code == 0, text
    d = json.loads(text)
    assert d["model"] == "llama-3.1-70b" and d["replicas"] == 2 and d["requests"] == 200
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "queue_ms"):
        assert set(d[key]) == {"mean", "p50", "p90", "p99", "p999", "max"}, key
        assert d[key]["p50"] <= d[key]["p99"] <= d[key]["max"]
    assert 0 < d["goodput_req_s"] <= d["req_s"] and d["slo"]["ttft_ms"] == 1000.0
    assert d["out_tok_s"] > 0 and 0 < d["kv_peak_fraction"] <= 1 and d["preemptions"] >= 0


def test_simulate_mixed_chunk_follows_the_framework() -> None:
    """SGLang's decodes wait out its prefill steps unless --mixed-chunk; vLLM's share them."""
    def run(*extra: str) -> dict[str, object]:
        code, text = _invoke(*SMALL, "--json", *extra)
        assert code == 0, text
        out: dict[str, object] = json.loads(text)
        return out

    sglang, sglang_mixed = run("--framework", "sglang"), run("--framework", "sglang", "--mixed-chunk")
    vllm, vllm_unmixed = run(), run("--no-mixed-chunk")
    assert sglang["mixed_chunk"] is False and sglang_mixed["mixed_chunk"] is True and vllm["mixed_chunk"] is True
    assert sglang["tpot_ms"]["mean"] > sglang_mixed["tpot_ms"]["mean"]  # type: ignore[index]
    assert vllm_unmixed["tpot_ms"]["mean"] > vllm["tpot_ms"]["mean"]  # type: ignore[index]
    assert vllm["reserve_kv"] is False and run("--framework", "trtllm")["reserve_kv"] is True


def test_simulate_closed_loop_trace_and_disagg_json() -> None:
    code, text = _invoke("--trace", "azure-code", "--requests", "150", "--concurrency", "16", "--json")
    assert code == 0, text
    assert json.loads(text)["requests"] == 150
    code, text = _invoke(*SMALL, "--prefill-replicas", "1", "--decode-replicas", "2", "--json")
    assert code == 0, text
    d = json.loads(text)
    assert d["mode"] == "disaggregated" and d["replicas"] == 3


def test_simulate_mtp_defaults_to_the_calibrated_acceptance() -> None:
    from hierro.perf import default_calibration

    rate = default_calibration().mtp_acceptance
    assert rate is not None and 0.0 < rate < 1.0
    code, text = _invoke(*SMALL, "--spec-tokens", "2", "--json")
    assert code == 0, text
    data = json.loads(text)
    assert data["spec_acceptance"] == pytest.approx(rate)
    code, plain = _invoke(*SMALL, "--json")
    assert json.loads(plain)["tpot_ms"]["mean"] > data["tpot_ms"]["mean"]


def test_simulate_duration_caps_arrivals() -> None:
    code, text = _invoke("--qps", "5", "--duration", "20s", "--osl", "64", "--json")
    assert code == 0, text
    n = json.loads(text)["requests"]
    assert 60 < n < 150  # about 5/s x 20 s


def test_simulate_out_csv(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    code, text = _invoke(*SMALL, "--out", str(path))
    assert code == 0, text
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 200
    assert {"id", "arrival_s", "first_token_s", "finish_s", "output_tokens", "itl_max_s"} <= set(rows[0])
    assert sum(int(r["output_tokens"]) for r in rows) == 200 * 128
    assert all(float(r["finish_s"]) >= float(r["first_token_s"]) >= float(r["arrival_s"]) for r in rows)
    assert [p.name for p in tmp_path.iterdir()] == ["records.csv"]  # no temporary file left


def test_simulate_closed_loop_ramp_reports_the_steady_state() -> None:
    code, text = _invoke("--concurrency", "16", "--ramp", "3s", "--requests", "160", "--isl", "1024", "--osl",
                         "128", "--json")
    assert code == 0, text
    st = json.loads(text)["steady_state"]
    assert st["users"] == 16 and st["cycles"] == 7
    assert st["req_s"] * st["e2e_ms"] / 1000 == pytest.approx(16)
    code, text = _invoke("--concurrency", "16", "--requests", "160", "--isl", "1024", "--osl", "128")
    assert code == 0 and "steady state" in text


def test_simulate_swap_preemption_json() -> None:
    args = ("--qps", "8", "--requests", "300", "--isl", "2048", "--osl", "512", "--dtype", "bf16",
            "--mem-fraction", "0.43", "--json")
    code, text = _invoke(*args, "--preemption", "swap", "--host-bw", "64")
    assert code == 0, text
    d = json.loads(text)
    assert d["preemption"] == "swap" and d["preemptions"] > 0 and d["swap_outs"] == d["preemptions"]
    assert 0 < d["host_swap_peak_fraction"] <= 1
    code, text = _invoke(*args)
    assert code == 0, text
    assert json.loads(text)["swap_outs"] == 0


def test_simulate_out_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "records.parquet"
    if parquet_available():
        import pyarrow.parquet as pq

        code, text = _invoke(*SMALL, "--out", str(path))
        assert code == 0, text
        assert pq.read_table(path).num_rows == 200
        path.unlink()
    monkeypatch.setattr(simulate_module, "parquet_available", lambda: False)
    code, text = _invoke(*SMALL, "--out", str(path))
    assert code == 2 and "hierro[parquet]" in text and "\n" not in text
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ("--qps", "0", "--requests", "10"),
        ("--qps", "-1"),
        ("--qps", "2", "--concurrency", "4"),
        ("--trace", "azure-nonexistent"),
        ("--qps", "2", "--isl", "200000", "--requests", "5"),
        ("--qps", "2", "--length-dist", "zipf:2"),
        ("--qps", "2", "--slo", "latency=1s"),
        ("--qps", "2", "--slo", "ttft=fast"),
        ("--qps", "2", "--out", "records.txt"),
        ("--qps", "2", "--router", "random"),
        ("--qps", "2", "--prefill-replicas", "1"),
        ("--qps", "2", "--spec-tokens", "2", "--spec-acceptance", "1.5"),
        ("--qps", "2", "--ramp", "3s"),
        ("--concurrency", "2", "--ramp", "soon"),
        ("--qps", "2", "--preemption", "swap", "--gpu", "b200", "--tp", "1", "--model", "llama-3.1-8b"),
        ("--qps", "2", "--preemption", "swap", "--swap-space", "-1"),
        ("--qps", "2", "--preemption", "swap", "--host-bw", "0"),
        ("--qps", "2", "--prefill-replicas", "1", "--decode-replicas", "1", "--no-mixed-chunk"),
    ],
)
def test_simulate_bad_input_is_one_line(args: tuple[str, ...]) -> None:
    code, text = _invoke(*args)
    assert code == 2 and text and "\n" not in text, text


def test_simulate_bad_trace_file(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,12,abc\n")
    out = tmp_path / "r.csv"
    code, text = _invoke("--trace", str(bad), "--out", str(out))
    assert code == 2 and "\n" not in text
    assert not out.exists()
