"""``hierro search`` with demand curves and shared fleets: JSON and tables end to end, and bad
input as one line with exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hierro.cli import app, main

SMALL = ["--gpus", "h100-sxm", "--dtypes", "fp8", "--kv-dtypes", "fp8", "--max-gpus-per-replica", "8",
         "--token-budgets", "8192", "--sim-top", "3", "--backend", "serial"]

FLEET = """\
gpus: [h100-sxm]
dtypes: [fp8]
kv_dtypes: [fp8]
max_gpus_per_replica: 8
max_pp: 1
token_budgets: [8192]
sim_top: 3
models:
  - name: chat
    model: llama-3.1-8b
    isl: 2048
    osl: 256
    slo: {ttft_p99: 1.5s, tpot_p99: 50ms}
    demand: {qps: 40, peak_to_mean: 2, peak_hour: 14}
  - name: batch
    model: llama-3.1-8b
    isl: 4096
    osl: 256
    slo: {e2e_p99: 60s}
    demand: {curve_file: night.csv}
"""


def _night(path: Path) -> None:
    # busy at night, quiet by day: the chat model's peak (hour 14) is this one's trough
    rates = [40.0 if h < 6 or h >= 22 else 4.0 for h in range(24)]
    path.write_text("hour,req_s\n" + "".join(f"{h},{v}\n" for h, v in enumerate(rates)), encoding="utf-8")


def _invoke(*args: str) -> dict[str, object]:
    r = CliRunner().invoke(app, ["search", *args, "--json"])
    assert r.exit_code == 0, r.output
    out: dict[str, object] = json.loads(r.stdout)
    return out


def test_diurnal_demand_sizes_the_peak_and_reports_the_day() -> None:
    # enough load for more than one replica at the peak, so that the trough can hold fewer
    d = _invoke("--model", "llama-3.1-8b", "--isl", "2048", "--osl", "256", "--qps", "120", "--peak-to-mean", "1.8",
                "--peak-hour", "9", "--slo", "ttft_p99=1.5s", "--slo", "tpot_p99=50ms", *SMALL)
    assert d["peak_req_s"] == pytest.approx(120.0)
    demand = d["demand"]
    assert isinstance(demand, dict) and demand["kind"] == "curve" and len(demand["curve_req_s"]) == 24
    f = d["fleet_over_curve"]
    assert isinstance(f, dict)
    best = d["recommendations"][0]  # type: ignore[index]
    assert f["held_gpus"] == best["gpus"] == max(f["gpus_per_slot"])
    assert f["peak_slot"] == 9 and f["mean_gpus"] < f["held_gpus"]


def test_demand_curve_file_and_tokens_per_day(tmp_path: Path) -> None:
    p = tmp_path / "night.csv"
    _night(p)
    d = _invoke("--model", "llama-3.1-8b", "--isl", "4096", "--osl", "256", "--demand-curve", str(p),
                "--slo", "e2e_p99=60s", *SMALL)
    assert d["peak_req_s"] == 40.0
    assert d["demand"]["curve_req_s"][12] == 4.0  # type: ignore[index]
    tpd = 2e9
    d = _invoke("--model", "llama-3.1-8b", "--isl", "2048", "--osl", "256", "--tokens-per-day", str(tpd),
                "--slo", "ttft_p99=1.5s", *SMALL)
    assert d["peak_req_s"] == pytest.approx(tpd / 86400 / 2304)


def test_shared_fleet_file_pools_offset_peaks(tmp_path: Path) -> None:
    _night(tmp_path / "night.csv")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET, encoding="utf-8")
    d = _invoke("--shared", str(fleet), "--backend", "serial")
    assert [m["name"] for m in d["models"]] == ["chat", "batch"]  # type: ignore[attr-defined]
    assert d["slots"] == 24
    assert d["pooling_helps"] is True and d["gpus"] < d["separate_gpus"]  # type: ignore[operator]
    pool = d["pools"][0]  # type: ignore[index]
    assert pool["gpu"] == "h100-sxm" and pool["models"] == ["chat", "batch"]
    assert pool["pooled_gpus"] == max(pool["gpus_per_slot"])
    r = CliRunner().invoke(app, ["search", "--shared", str(fleet), "--backend", "serial"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "shared fleet of 2 models over 24 slots" in r.stdout and "pools" in r.stdout


def test_bad_demand_and_fleet_input_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.replace("isl: 4096", "isl: -4").replace("{e2e_p99: 60s}", "{e2e_p99: fast}"),
                     encoding="utf-8")
    cases = [
        (["search", "--qps", "5", "--tokens-per-day", "1e9"],
         ["hierro: error: demand options: give exactly one of qps, tokens_per_day, curve or curve_file"]),
        (["search", "--shared", str(fleet), "--isl", "100"], ["--shared takes the models, demands and space from"]),
        (["search", "--shared", str(fleet)],
         [f"hierro: error: {fleet}: models.1.isl: Input should be greater than", "cannot read duration 'fast'"]),
        (["search", "--model", "llama-3.1-8b", "--slo", "ttft_p99=1ms", *SMALL],
         ["ttft_p99 <= 1 ms is below the hardware floor", "over by"]),
    ]
    for args, want in cases:
        monkeypatch.setattr(sys, "argv", ["hierro", *args])
        with pytest.raises(SystemExit) as e:
            main()
        err = capsys.readouterr()
        assert e.value.code == 2, (args, err.err)
        for w in want:
            assert w in err.err, (args, err.err)
        assert len(err.err.strip().splitlines()) == 1 and "Traceback" not in err.err
        assert err.out == ""
