"""Disaggregated candidates: on a prefill-heavy workload with a tight TPOT the search picks a
disaggregated fleet when it is cheaper, and that fleet, simulated on its own, meets the SLOs."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hierro.perf import StepModel
from hierro.search import (
    Budget,
    Demand,
    DisaggScreen,
    PoolJob,
    SearchRequest,
    SearchResult,
    SearchSpace,
    pareto_front,
    parse_slos,
    pool_groups,
    screen_disagg,
    search,
)
from hierro.search.screen import gpu_prices
from hierro.search.space import enumerate_space
from hierro.sim import Fixed, simulate, simulate_disagg, synthetic
from hierro.specs import get_accelerator, get_model
from hierro.specs.memory import kv_bytes_per_seq

SLOS = parse_slos(["ttft_p99=3s", "tpot_p99=25ms"])
"""Long prompts, short answers at a TTFT target that leaves room for the KV hand-off: the case
where a disaggregated fleet is the cheaper one."""
SPACE = SearchSpace(gpus=("h100-sxm",), weight_dtypes=("fp8",), kv_dtypes=("fp8",), max_devices=8, max_pp=2,
                    concurrency_step=2.0, max_batched_tokens=(8192, 16384))
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
    assert res.ttft.p99 <= 3.0
    assert res.tpot.p99 <= 0.025


def _screen(space: SearchSpace, isl: int, osl: int, gpus: list[str], **kw: object) -> DisaggScreen:
    from hierro.perf import default_calibration

    m = get_model("llama-3.1-70b")
    sp = enumerate_space(m, isl, osl, space)
    prices, _ = gpu_prices(gpus)
    job = PoolJob(m, isl, osl, sp.groups, tuple(tuple(int(c) for c in sp.concurrencies(g)) for g in sp.groups),
                  default_calibration())
    return screen_disagg(sp, pool_groups(job), prices, demand_req_s=4.0, headroom=0.1, **kw)  # type: ignore[arg-type]


def test_disagg_screen_pairs_pools_and_ratios() -> None:
    ds = _screen(SPACE, 8192, 128, ["h100-sxm"], limit=100000)
    cs = ds.feasible
    assert cs and ds.n_mixed == 0 and ds.n_screened >= len(cs)
    for c in cs[:200]:
        assert c.prefill.gpu == c.decode.gpu and not c.mixed
        assert c.prefill.max_batched_tokens == c.decode.max_batched_tokens
        assert c.req_s >= 4.0 * 1.1 - 1e-9
        assert c.ttft_s > 0 and c.tpot_s > 0 and c.e2e_s > c.ttft_s
        assert c.ratio == f"{c.prefill_replicas}:{c.decode_replicas}"
    # several prefill:decode ratios for the same pair of layouts
    assert len({c.ratio for c in cs if c.prefill == cs[0].prefill and c.decode == cs[0].decode}) > 2
    # one per (pools, replica counts), in cost order
    keys = [(c.prefill, c.decode, c.prefill_replicas, c.decode_replicas) for c in cs]
    assert len(keys) == len(set(keys))
    costs = [c.fleet_usd_per_hour for c in cs]
    assert costs == sorted(costs)


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
            "--kv-dtypes", "fp8", "--max-gpus-per-replica", "8", "--token-budgets", "8192", "--sim-top", "3", "--backend", "serial", "--json"]
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


MIXED = replace(BASE, space=replace(SPACE, gpus=("h100-sxm", "b200")), disagg=True)


@pytest.fixture(scope="module")
def mixed() -> tuple[SearchResult, SearchResult]:
    return search(replace(MIXED, mixed_pools=False)), search(MIXED)


def test_mixed_pools_are_screened_priced_by_parts_and_never_cost_more(
        mixed: tuple[SearchResult, SearchResult]) -> None:
    same, mix = mixed
    assert same.disagg_screen is not None and mix.disagg_screen is not None
    assert same.disagg_screen.n_mixed == 0 and all(not c.mixed for c in same.disagg)
    assert mix.disagg_screen.n_mixed > 0
    assert mix.best.fleet_usd_per_hour <= same.best.fleet_usd_per_hour
    mixed_ones = [c for c in mix.disagg if c.mixed]
    assert mixed_ones, "the screen found no feasible mixed pool on a prefill-heavy workload"
    for d in mixed_ones:
        p = d.prefill_price.usd_per_gpu_hour * d.prefill_replicas * d.prefill.devices
        q = d.decode_price.usd_per_gpu_hour * d.decode_replicas * d.decode.devices
        assert d.fleet_usd_per_hour == pytest.approx(p + q)
        assert d.prefill.gpu != d.decode.gpu
        assert d.prefill.plan.weight_dtype == d.decode.plan.weight_dtype
        assert d.prefill.plan.kv_dtype == d.decode.plan.kv_dtype
        assert f"P {d.prefill.gpu}" in d.label() and f"D {d.decode.gpu}" in d.label()


def test_winner_meets_slos_on_an_independent_draw(mixed: tuple[SearchResult, SearchResult]) -> None:
    """The recommended fleet, simulated on its own with an arrival draw the search never saw."""
    best = mixed[1].best
    m = get_model("llama-3.1-70b")
    wl = synthetic(1500, Fixed(8192), Fixed(128), np.random.default_rng(7), rate=4.0)
    d = best.disagg
    if d is None:
        g = best.candidate.group
        sm = StepModel(m, get_accelerator(g.gpu), g.plan, framework=g.framework)
        res = simulate(sm, wl, replicas=best.replicas, router="least_outstanding",
                       max_num_batched_tokens=g.max_batched_tokens, warmup=150)
    else:
        pa, da = get_accelerator(d.prefill.gpu), get_accelerator(d.decode.gpu)
        psm = StepModel(m, pa, d.prefill.plan, framework=d.prefill.framework)
        dsm = StepModel(m, da, d.decode.plan, framework=d.decode.framework)
        # the slower side of the transfer: each device sends / receives its KV shard over its NIC
        kv_p, kv_d = kv_bytes_per_seq(m, d.prefill.plan, 8192.0), kv_bytes_per_seq(m, d.decode.plan, 8192.0)
        xfer = max(kv_p / pa.scale_out_bw_Bps, kv_d / da.scale_out_bw_Bps)
        assert kv_p / d.transfer_bw_Bps == pytest.approx(xfer)
        res = simulate_disagg(psm, dsm, wl, d.prefill_replicas, d.decode_replicas, transfer_bw_Bps=kv_p / xfer,
                              max_num_batched_tokens=d.prefill.max_batched_tokens, warmup=150)
    assert res.ttft.p99 <= 3.0
    assert res.tpot.p99 <= 0.025


def test_mixed_pools_stay_within_a_vendor() -> None:
    ds = _screen(replace(SPACE, gpus=("h100-sxm", "mi300x"), max_batched_tokens=(8192,)), 8192, 128,
                 ["h100-sxm", "mi300x"], limit=100000)
    assert ds.n_mixed == 0
    assert {c.prefill.gpu for c in ds.feasible} == {"h100-sxm", "mi300x"}
    assert all(not c.mixed for c in ds.feasible + ds.throughput_front + ds.cost_front)


def test_frontiers_take_disaggregated_fleets_in(mixed: tuple[SearchResult, SearchResult], tmp_path: Path) -> None:
    res = mixed[1]
    t = res.table
    dt = res.throughput_frontier_disagg
    assert dt, "disaggregated fleets should reach the throughput front on this workload"
    pts = [(float(t.tok_s_per_user[i]), float(t.tok_s_per_gpu[i])) for i in res.throughput_frontier]
    pts += [(c.tok_s_per_user, c.tok_s_per_gpu) for c in dt]
    # every screened configuration, of either kind, is dominated by or equal to the front
    everyone = [(float(a), float(b)) for a, b in zip(t.tok_s_per_user, t.tok_s_per_gpu, strict=True)]
    assert res.disagg_screen is not None
    everyone += [(c.tok_s_per_user, c.tok_s_per_gpu) for c in res.disagg_screen.feasible]
    for x, y in pts:
        assert not any(a > x and b > y for a, b in everyone)
    for x, y in everyone:
        assert any(a >= x - 1e-9 and b >= y - 1e-9 for a, b in pts)
    # the aggregated rows left on the joint front are rows of the aggregated-only front
    assert set(res.throughput_frontier.tolist()) <= set(pareto_front(t.tok_s_per_user, t.tok_s_per_gpu).tolist())
    from hierro.report.search import write_frontiers

    paths = write_frontiers(res, tmp_path)
    assert sorted(p.name for p in paths) == ["cost_frontier.csv", "cost_frontier.png", "throughput_frontier.csv",
                                            "throughput_frontier.png"]
    with (tmp_path / "throughput_frontier.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    modes = [r["mode"] for r in rows]
    assert modes.count("disaggregated") == len(dt) and modes.count("aggregated") == len(res.throughput_frontier)
    xs = [float(r["tok_s_per_user"]) for r in rows]
    assert xs == sorted(xs, reverse=True)
    assert not list(tmp_path.glob(".*tmp*"))


def test_local_backend_agrees_on_disaggregated_search(mixed: tuple[SearchResult, SearchResult]) -> None:
    from hierro.search import LocalBackend

    a, b = mixed[1], search(MIXED, LocalBackend(2))
    assert [(r.label(), r.gpus, r.sim.ttft_p99_s) for r in a.recommendations] == [
        (r.label(), r.gpus, r.sim.ttft_p99_s) for r in b.recommendations]
    assert [c.label() for c in a.throughput_frontier_disagg] == [c.label() for c in b.throughput_frontier_disagg]
    assert [c.label() for c in a.disagg] == [c.label() for c in b.disagg]
