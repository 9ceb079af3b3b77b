"""Disaggregated candidates: on a prefill-heavy workload with a tight TPOT the search picks a
disaggregated fleet when it is cheaper, and that fleet, simulated on its own, meets the SLOs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hierro.perf import StepModel
from hierro.search import (
    Budget,
    Demand,
    SearchRequest,
    SearchResult,
    SearchSpace,
    parse_slos,
    screen_disagg,
    search,
)
from hierro.search.screen import gpu_prices
from hierro.search.space import enumerate_space
from hierro.sim import Fixed, simulate_disagg, synthetic
from hierro.specs import get_accelerator, get_model

SLOS = parse_slos(["ttft_p99=2s", "tpot_p99=25ms"])
SPACE = SearchSpace(gpus=("h100-sxm",), weight_dtypes=("fp8",), kv_dtypes=("fp8",), max_devices=8, max_pp=2,
                    concurrency_step=2.0)
BASE = SearchRequest("llama-3.1-70b", 8192, 128, Demand(4.0), SLOS, space=SPACE, sim_top=5, sim_requests=1000,
                     top=5)


@pytest.fixture(scope="module")
def both() -> tuple[SearchResult, SearchResult]:
    return search(BASE), search(replace(BASE, disagg=True))


def test_disaggregated_winner_when_cheaper(both: tuple[SearchResult, SearchResult]) -> None:
    agg, dis = both
    assert agg.best.mode == "aggregated" and agg.best.disagg is None and not agg.disagg
    assert all(r.mode == "aggregated" for r in agg.recommendations)
    best = dis.best
    assert best.mode == "disaggregated" and best.disagg is not None
    assert best.fleet_usd_per_hour < agg.best.fleet_usd_per_hour
    assert best.gpus == best.disagg.prefill_replicas * best.disagg.prefill.devices + (
        best.disagg.decode_replicas * best.disagg.decode.devices)
    assert best.row == -1 and "disagg" in best.label()
    # ranked together, in cost order
    costs = [r.fleet_usd_per_hour for r in dis.recommendations]
    assert costs == sorted(costs)
    assert len(dis.disagg) > 0


def test_disaggregated_winner_meets_slos_on_its_own(both: tuple[SearchResult, SearchResult]) -> None:
    d = both[1].best.disagg
    assert d is not None
    m = get_model("llama-3.1-70b")
    psm = StepModel(m, get_accelerator(d.prefill.gpu), d.prefill.plan, framework=d.prefill.framework)
    dsm = StepModel(m, get_accelerator(d.decode.gpu), d.decode.plan, framework=d.decode.framework)
    wl = synthetic(1500, Fixed(8192), Fixed(128), np.random.default_rng(1), rate=4.0)
    res = simulate_disagg(psm, dsm, wl, d.prefill_replicas, d.decode_replicas,
                          max_num_batched_tokens=d.prefill.max_batched_tokens, warmup=150)
    assert res.ttft.p99 <= 2.0
    assert res.tpot.p99 <= 0.025


def test_disagg_screen_pairs_pools_and_ratios() -> None:
    m = get_model("llama-3.1-70b")
    sp = enumerate_space(m, 8192, 128, SPACE)
    prices, _ = gpu_prices(["h100-sxm"])
    from hierro.perf import default_calibration

    cs = screen_disagg(sp, default_calibration(), prices, demand_req_s=4.0, headroom=0.1)
    assert cs
    for c in cs[:200]:
        assert c.prefill.gpu == c.decode.gpu
        assert c.req_s >= 4.0 * 1.1 - 1e-9
        assert c.ttft_s > 0 and c.tpot_s > 0 and c.e2e_s > c.ttft_s
        assert c.ratio == f"{c.prefill_replicas}:{c.decode_replicas}"
    # several prefill:decode ratios for the same pair of layouts
    assert len({c.ratio for c in cs if c.prefill == cs[0].prefill and c.decode == cs[0].decode}) > 2


def test_disagg_respects_gpu_budget(both: tuple[SearchResult, SearchResult]) -> None:
    res = search(replace(BASE, disagg=True, budget=Budget(max_gpus=12)))
    assert all(r.gpus <= 12 for r in res.recommendations)
    assert all(c.gpus <= 12 for c in res.disagg)


def test_cli_disagg_flag_reports_mode() -> None:
    import json

    from typer.testing import CliRunner

    from hierro.cli import app

    args = ["search", "--model", "llama-3.1-70b", "--isl", "8192", "--osl", "128", "--qps", "4",
            "--slo", "ttft_p99=2s", "--slo", "tpot_p99=25ms", "--gpus", "h100-sxm", "--dtypes", "fp8",
            "--kv-dtypes", "fp8", "--max-gpus-per-replica", "8", "--sim-top", "3", "--backend", "serial", "--json"]
    r = CliRunner().invoke(app, [*args, "--disagg"])
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)["recommendations"]
    assert recs[0]["mode"] == "disaggregated"
    d = recs[0]["disagg"]
    assert d["ratio"] == f"{d['prefill_replicas']}:{d['decode_replicas']}"
    args[args.index("tpot_p99=25ms")] = "tpot_p99=200ms"
    args[args.index("ttft_p99=2s")] = "ttft_p99=10s"
    r = CliRunner().invoke(app, [*args, "--no-disagg"])
    assert r.exit_code == 0, r.output
    assert {x["mode"] for x in json.loads(r.stdout)["recommendations"]} == {"aggregated"}
