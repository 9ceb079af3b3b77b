"""Preemption by swap: KV blocks to host memory and back over the host link, beside recompute."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.catalog import accelerator_files
from hierro.perf import StepModel
from hierro.sim import (
    DEFAULT_SWAP_SPACE_BYTES,
    SimError,
    SimResult,
    Workload,
    host_link_Bps,
    kv_block_bytes,
    simulate,
    simulate_disagg,
)
from hierro.specs import Plan, get_accelerator, get_model
from hierro.units import GIB

PoissonFactory = Callable[..., Workload]
Checker = Callable[[SimResult, Workload], None]

TIGHT = 1500
"""KV blocks that force preemptions on the test workload (llama-3.1-70b TP8 holds ~2 x 10^4)."""


def test_swap_conserves_and_keeps_kv_within_capacity(
        sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(600, 8.0, seed=4)
    res = simulate(sm70, wl, kv_blocks=TIGHT, preemption="swap")
    sim_conserved(res, wl)
    assert res.preemptions > 0 and res.swap_outs == res.preemptions  # 4 GiB of host space suffices
    assert 0.0 < res.host_peak_fraction <= 1.0
    rec = simulate(sm70, wl, kv_blocks=TIGHT)
    assert rec.swap_outs == 0 and rec.host_peak_fraction == 0.0


def test_swap_closed_form_equals_step_by_step(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(400, 8.0, seed=4)
    fast = simulate(sm70, wl, kv_blocks=TIGHT, preemption="swap")
    slow = simulate(sm70, wl, kv_blocks=TIGHT, preemption="swap", step_by_step=True)
    for f in ("first_token_s", "finish_s"):
        np.testing.assert_allclose(fast.records[f], slow.records[f], rtol=1e-9, atol=0)
    assert (fast.preemptions, fast.swap_outs, fast.steps) == (slow.preemptions, slow.swap_outs, slow.steps)


def test_swap_trades_host_copies_for_recompute(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    """Over PCIe Gen5 a swapped request comes back faster than it recomputes its context; over a
    slow host link the copies stall every step that issues them and recompute wins; the cost
    falls as the link gets faster."""
    wl = sim_poisson(600, 8.0, seed=4)
    recompute = simulate(sm70, wl, kv_blocks=TIGHT).e2e.mean
    e2e = {bw: simulate(sm70, wl, kv_blocks=TIGHT, preemption="swap", host_bw_Bps=bw).e2e.mean
           for bw in (1e9, 8e9, 64e9, 1e12)}
    assert e2e[64e9] < recompute < e2e[1e9]
    assert e2e[1e9] > e2e[8e9] > e2e[64e9] > e2e[1e12]
    assert host_link_Bps("h100-sxm") == 64e9  # the default is the catalogued PCIe Gen5 x16 link
    default = simulate(sm70, wl, kv_blocks=TIGHT, preemption="swap").e2e.mean
    assert default == e2e[64e9]


def test_a_full_host_falls_back_to_recompute(
        sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(600, 8.0, seed=4)
    # host room for the KV of 1,500 tokens: larger victims (prompts are 1,024-2,048) recompute
    room = 1500 / 16 * kv_block_bytes(sm70)
    res = simulate(sm70, wl, kv_blocks=TIGHT, preemption="swap", swap_space_bytes=room)
    sim_conserved(res, wl)
    assert 0 < res.swap_outs < res.preemptions
    assert res.host_peak_fraction <= 1.0
    none = simulate(sm70, wl, kv_blocks=TIGHT, preemption="swap", swap_space_bytes=0.0)
    assert none.swap_outs == 0 and none.preemptions > 0


@settings(max_examples=12, deadline=None)
@given(blocks=st.integers(700, 3000), host_gib=st.sampled_from([0.05, 0.5, 4.0]), seed=st.integers(0, 50),
       mode=st.sampled_from(["recompute", "swap"]))
def test_swap_invariants_hold_under_any_pressure(
        sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker,
        blocks: int, host_gib: float, seed: int, mode: str) -> None:
    wl = sim_poisson(150, 10.0, seed=seed, isl=1024, osl=256)
    res = simulate(sm70, wl, kv_blocks=blocks, preemption=mode, swap_space_bytes=host_gib * GIB)
    sim_conserved(res, wl)
    assert (res.swap_outs > 0) <= (mode == "swap")


def test_disaggregated_decode_pool_swaps(
        sm70: StepModel, sim_poisson: PoissonFactory, sim_conserved: Checker) -> None:
    wl = sim_poisson(300, 8.0, seed=4)
    res = simulate_disagg(sm70, sm70, wl, prefill_replicas=2, decode_replicas=1, decode_kv_blocks=TIGHT,
                          preemption="swap")
    sim_conserved(res, wl)
    assert res.swap_outs > 0


@pytest.mark.parametrize("acc_id", sorted(accelerator_files()))
def test_host_link_is_a_sourced_catalog_figure(acc_id: str) -> None:
    """Every accelerator states its host link (PCIe or NVLink-C2C, per direction), or says why
    it cannot; known links lie between PCIe Gen4 x16 and NVLink-C2C, and the simulator reads
    the catalog's figure."""
    fig = accelerator_files()[acc_id].host_bw_Bps
    assert fig.source.strip() and fig.as_of.strip()
    if fig.value is None:
        assert fig.note.strip(), f"{acc_id}: a null host link without a reason"
        assert host_link_Bps(acc_id) is None
    else:
        assert 16e9 <= fig.value <= 450e9, f"{acc_id}: host link {fig.value:g} B/s per direction"
        assert host_link_Bps(acc_id) == get_accelerator(acc_id).host_bw_Bps == fig.value


def test_bad_swap_input(sm70: StepModel, sim_poisson: PoissonFactory) -> None:
    wl = sim_poisson(10, 1.0)
    b200 = StepModel(get_model("llama-3.1-8b"), get_accelerator("b200"), Plan(tp=1))
    with pytest.raises(SimError, match="host-link"):
        simulate(b200, wl, preemption="swap")  # no sourced figure: say so, do not guess
    assert simulate(b200, wl, preemption="swap", host_bw_Bps=64e9).n_requests == 10
    for kw in ({"preemption": "evict"}, {"preemption": "swap", "host_bw_Bps": 0.0},
               {"preemption": "swap", "swap_space_bytes": -1.0}):
        with pytest.raises(SimError):
            simulate(sm70, wl, **kw)
    assert DEFAULT_SWAP_SPACE_BYTES == 4 * GIB
