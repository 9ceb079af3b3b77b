"""Training compute, memory, reliability and planner: formulas, invariants and bad input."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.errors import HierroError
from hierro.specs import get_accelerator, get_model
from hierro.training import (
    Layout,
    compute_optimal,
    korthikanti_layer_bytes,
    plan_training,
    reliability,
    six_nd_flops,
    train_flops,
    train_memory,
)
from hierro.training.reliability import LLAMA3_FAILURES_PER_GPU_HOUR, checkpoint_bytes_per_param
from hierro.training.step import StepTime, TrainEfficiency, all_to_all_s, step_time

L405 = get_model("llama-3.1-405b")
DSV3 = get_model("deepseek-v3")
L70 = get_model("llama-3.1-70b")
H100 = get_accelerator("h100-sxm")


def test_flops_are_6nd_plus_attention() -> None:
    c6 = six_nd_flops(L405, 15.6e12)
    assert c6 == pytest.approx(6 * 405.85e9 * 15.6e12, rel=1e-3)
    c = train_flops(L405, 15.6e12, 8192)
    # attention at 8k adds a few percent: 3 x 126 layers x 2·128·256 x ~4096 pairs per token
    assert 1.02 < c / c6 < 1.08
    # MoE counts active parameters
    assert six_nd_flops(DSV3, 1.0) == pytest.approx(6 * 37.55e9, rel=1e-3)


def test_chinchilla() -> None:
    co = compute_optimal(5.76e23)  # Chinchilla's budget: 70B on 1.4T tokens
    assert co.params == pytest.approx(69.3e9, rel=0.02)
    assert co.tokens == pytest.approx(20 * co.params)
    with pytest.raises(HierroError):
        compute_optimal(-1.0)


def test_korthikanti_formula() -> None:
    # GPT-3 175B, s=2048, b=1, h=12288, a=96: table 2 of Korthikanti 2022
    sbh = 2048 * 12288
    assert korthikanti_layer_bytes(2048, 1, 12288, 96) == pytest.approx(sbh * (34 + 5 * 96 * 2048 / 12288))
    assert korthikanti_layer_bytes(2048, 1, 12288, 96, t=8, recompute="selective") == pytest.approx(sbh * 34 / 8)
    assert korthikanti_layer_bytes(2048, 1, 12288, 96, t=8, recompute="full") == pytest.approx(2 * sbh / 8)


def test_reliability_llama3() -> None:
    r = reliability(16384, 405e9)
    assert r.mtbf_s / 3600 == pytest.approx(3.09, rel=0.02)  # ~1 failure per 3 h
    assert r.checkpoint_interval_s == pytest.approx(math.sqrt(2 * r.mtbf_s * r.checkpoint_s))
    assert 0.85 < r.goodput < 0.97  # Llama 3: >90% effective training time
    assert abs(LLAMA3_FAILURES_PER_GPU_HOUR / 1.97e-5 - 1) < 0.01


def test_checkpoint_follows_the_recipe() -> None:
    # bf16 weights + fp32 master + two moments: 14 B/param with fp32 moments, 10 with bf16
    assert (checkpoint_bytes_per_param("fp32"), checkpoint_bytes_per_param("bf16")) == (14.0, 10.0)
    r14 = reliability(16384, 405e9)
    r10 = reliability(16384, 405e9, bytes_per_param=checkpoint_bytes_per_param("bf16"))
    assert r10.checkpoint_s == pytest.approx(r14.checkpoint_s * 10 / 14)
    assert r10.checkpoint_interval_s < r14.checkpoint_interval_s and r10.goodput > r14.goodput
    with pytest.raises(HierroError, match="bytes per parameter"):
        reliability(8, 1e9, bytes_per_param=0.0)
    # the planner writes the run's own state: DeepSeek-V3's bf16 moments make a smaller checkpoint
    lay = Layout(tp=8, pp=4, dp=32)
    kw = {"usd_per_gpu_hour": 1.0, "layout": lay}
    a = plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024, **kw)  # type: ignore[arg-type]
    b = plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024,
                      **{**kw, "layout": replace(lay, moments="bf16")})  # type: ignore[arg-type]
    assert (a.reliability.checkpoint_bytes_per_param, b.reliability.checkpoint_bytes_per_param) == (14.0, 10.0)
    assert b.reliability.checkpoint_s == pytest.approx(a.reliability.checkpoint_s * 10 / 14)
    assert b.goodput > a.goodput


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=8, max_value=65536), st.integers(min_value=1, max_value=65536))
def test_more_gpus_never_lengthen_a_run_at_fixed_efficiency(g: int, extra: int) -> None:
    # wall-clock = C / (G · peak · MFU · goodput(G)) with MFU fixed
    def wall(n: int) -> float:
        return 1.0 / (n * reliability(n, 405e9).goodput)

    assert wall(g + extra) <= wall(g) * (1 + 1e-12)


_BASE = {"tp": 2, "pp": 2, "dp": 4, "cp": 2, "ep": 1}


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["tp", "pp", "dp", "cp"]),
    st.sampled_from([0, 1, 2, 3]),
    st.sampled_from(["none", "selective", "full"]),
    st.integers(min_value=1, max_value=64),
)
def test_memory_never_rises_with_a_sharding_degree(dim: str, zero: int, rc: str, m: int) -> None:
    # L70 has 80 layers; pp in {2, 4, 8, 16} divides them
    base = Layout(**_BASE, zero=zero, recompute=rc)  # type: ignore[arg-type]
    bigger = Layout(**{**_BASE, dim: _BASE[dim] * 2}, zero=zero, recompute=rc)  # type: ignore[arg-type]
    a = train_memory(L70, base, 8192, m, H100.hbm_bytes).total_bytes
    b = train_memory(L70, bigger, 8192, m, H100.hbm_bytes).total_bytes
    if dim == "dp" and zero == 0:
        assert b == pytest.approx(a)
    else:
        assert b <= a * (1 + 1e-12)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([1, 2, 4, 8, 16, 32]), st.sampled_from([0, 1, 2, 3]))
def test_memory_never_rises_with_ep(ep: int, zero: int) -> None:
    a = train_memory(DSV3, Layout(pp=16, dp=64, ep=ep, zero=zero), 4096, 32, H100.hbm_bytes)
    b = train_memory(DSV3, Layout(pp=16, dp=64, ep=2 * ep, zero=zero), 4096, 32, H100.hbm_bytes)
    assert b.total_bytes <= a.total_bytes


def test_plan_llama3_405b() -> None:
    p = plan_training("llama-3.1-405b", 15.6e12, "h100-sxm", 16384, seq_len=8192, deadline_days=90)
    assert 0.36 < p.mfu < 0.45
    assert 50 < p.wall_clock_days < 110  # Llama 3: ~54 days of snapshot; whole run a few months
    assert p.gpu_hours == pytest.approx(p.gpus * p.wall_clock_days * 24)
    assert "TCO" in p.price_source
    assert p.cost_usd == pytest.approx(p.gpu_hours * p.usd_per_gpu_hour)
    assert p.peak_MW == pytest.approx(16384 * 10200 / 8 * 1.25 / 1e6)
    assert p.gpus_for_deadline is not None and p.gpus_for_deadline <= 16384
    slow = plan_training("llama-3.1-405b", 15.6e12, "h100-sxm", p.gpus_for_deadline, usd_per_gpu_hour=2.0)
    assert slow.wall_clock_days <= 90


def test_more_gpus_never_slower_in_planner() -> None:
    days = [plan_training("llama-3.1-70b", 2e12, "h100-sxm", g, usd_per_gpu_hour=2.0).wall_clock_days
            for g in (512, 1024, 2048, 4096)]
    assert all(b <= a for a, b in itertools.pairwise(days))


def test_bad_layout_one_line() -> None:
    with pytest.raises(HierroError) as e:
        plan_training("llama-3.1-405b", 1e12, "h100-sxm", 1024, layout=Layout(tp=8, pp=8, dp=8))
    assert "1024" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(HierroError) as e:
        plan_training("llama-3.1-405b", 1e12, "h100-sxm", 512, layout=Layout(tp=3, pp=1, dp=512 // 3))
    assert "\n" not in str(e.value)


def test_does_not_fit_even_fully_sharded() -> None:
    with pytest.raises(HierroError) as e:
        plan_training("llama-3.1-405b", 1e12, "h100-sxm", 8)
    msg = str(e.value)
    assert "does not fit" in msg and "\n" not in msg


def _step(model: str, lay: Layout, dtype: str = "bf16", **eff: float) -> StepTime:
    arch = get_model(model)
    return step_time(arch, lay, H100, 8, 8192 if model != "deepseek-v3" else 4096, 2048, dtype,
                     TrainEfficiency(**eff))


def test_fp8_speeds_up_only_the_linear_layers() -> None:
    lay = Layout(tp=8, pp=8, dp=16, vpp=2)
    bf16, fp8 = _step("llama-3.1-405b", lay), _step("llama-3.1-405b", lay, "fp8")
    # attention core and LM head stay at the bf16 peak: less than twice as fast, more than 1.5x
    assert 1.5 < bf16.compute_s / fp8.compute_s < 2.0
    # MFU is quoted against the bf16 peak for fp8 runs too
    assert fp8.mfu > bf16.mfu


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_more_overlap_never_slows_a_step(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    lay = Layout(tp=8, pp=8, dp=16, vpp=2)
    s_lo = _step("llama-3.1-405b", lay, tp_overlap=lo, pp_overlap=lo)
    s_hi = _step("llama-3.1-405b", lay, tp_overlap=hi, pp_overlap=hi)
    assert s_hi.step_s <= s_lo.step_s * (1 + 1e-12)
    assert s_hi.tp_comm_s <= s_lo.tp_comm_s + 1e-12


def test_expert_all_to_all_overlap_costs_sms() -> None:
    lay = Layout(pp=16, dp=64, ep=64, recompute="full")
    plain = _step("deepseek-v3", lay, "fp8")
    hidden = _step("deepseek-v3", lay, "fp8", ep_overlap=1.0)
    dualpipe = _step("deepseek-v3", lay, "fp8", ep_overlap=1.0, comm_sm_share=20 / 132)
    assert plain.ep_comm_s > 0 and hidden.ep_comm_s < plain.ep_comm_s
    assert dualpipe.compute_s == pytest.approx(hidden.compute_s * 132 / 112)


def test_all_to_all_within_a_node_beats_across_nodes() -> None:
    # EP8 fits one 8-GPU node (NVLink); EP64 crosses 8 nodes over the scale-out network
    e = TrainEfficiency()
    within = all_to_all_s(1e9, 8, 8, 1, 8, H100, e)
    across = all_to_all_s(1e9, 8, 64, 1, 8, H100, e)
    assert within < across
    # each token crosses the scale-out network once per distinct remote node, not per expert
    nodes = 8
    remote = (nodes - 1) * (1 - (1 - 1 / nodes) ** 8) / 8
    assert across == pytest.approx(1e9 * remote / (H100.scale_out_bw_Bps * e.link) + 7 * e.alpha_out_s)


def test_fixed_degrees_are_kept_and_checked() -> None:
    p = plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024, usd_per_gpu_hour=2.0, fixed={"tp": 8, "pp": 4})
    assert (p.layout.tp, p.layout.pp, p.layout.dp * p.layout.cp) == (8, 4, 32)
    with pytest.raises(HierroError) as e:
        plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024, fixed={"tpp": 8})
    assert "tpp" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(HierroError) as e:  # 3 does not divide 1024 GPUs
        plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024, fixed={"pp": 3})
    assert "pp=3" in str(e.value) and "\n" not in str(e.value)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([64, 128, 256, 512]), st.sampled_from([2, 4, 8]))
def test_more_gpus_at_fixed_layout_shape_never_lengthen_a_run(g: int, k: int) -> None:
    # same tp and pp, more data-parallel replicas: the per-GPU work shrinks, the run never lengthens
    kw = {"usd_per_gpu_hour": 2.0, "fixed": {"tp": 8, "pp": 4, "cp": 1}}
    small = plan_training("llama-3.1-70b", 1e12, "h100-sxm", g, **kw)  # type: ignore[arg-type]
    big = plan_training("llama-3.1-70b", 1e12, "h100-sxm", g * k, **kw)  # type: ignore[arg-type]
    assert big.wall_clock_days <= small.wall_clock_days * (1 + 1e-9)


def test_layer_activations_are_korthikanti_without_dropout_and_scores() -> None:
    # GPT-3 175B shape: Korthikanti's 34·s·b·h less its two dropout masks (2·s·b·h), fused
    # attention keeping one fp32 log-sum-exp per head instead of the scores
    from hierro.training.anchors import megascale_175b
    from hierro.training.memory import layer_act_bytes

    m = megascale_175b()
    lay, h = m.groups[0][0], m.hidden
    assert layer_act_bytes(lay, h, "none") == pytest.approx(32 * h + 4 * 128)
    assert layer_act_bytes(lay, h, "full") == 2 * h
    assert layer_act_bytes(lay, h, "none", fp8=True) < layer_act_bytes(lay, h, "none")
    # selective drops both norm outputs and the gated product: 2·(2h) + 2·(8h/3)
    assert layer_act_bytes(lay, h, "none") - layer_act_bytes(lay, h, "selective") == pytest.approx(
        4 * h + 2 * (8 * h // 3))
    # MLA: selective keeps the latents, not the up-projected q, k, v
    mla = DSV3.groups[-1][0]
    saved = layer_act_bytes(mla, DSV3.hidden, "none") - layer_act_bytes(mla, DSV3.hidden, "selective")
    assert saved > 2 * 128 * (192 + 128 + 128)


@pytest.mark.parametrize("p,v", [(4, 2), (8, 4), (16, 8), (16, 2)])
def test_in_flight_matches_megatron_interleaved_factor(p: int, v: int) -> None:
    from hierro.training.memory import in_flight_layers

    n = 2 * v  # layers on the rank
    lay = Layout(pp=p, vpp=v)
    # Korthikanti §4.2.3 / Megatron's estimator: L·(1 + (p-1)/(p·v)) with L = p·n
    assert in_flight_layers(lay, 64, n, 0) == pytest.approx(p * n * (1 + (p - 1) / (p * v)))
    # the embedding in its own chunk: the first chunk's warm-up forwards hold no layer
    assert in_flight_layers(lay, 64, n - 1, 0, embed_chunk=True) < in_flight_layers(lay, 64, n, 0)
    assert in_flight_layers(Layout(pp=p), 64, n, 0) == p * n  # 1F1B: p micro-batches
    assert in_flight_layers(Layout(pp=p), 3, n, 0) == min(3, p) * n
    assert in_flight_layers(Layout(pp=p, schedule="dualpipe"), 64, n, 0) == (p + 1) * n


def test_llama3_published_layout_fits_only_thanks_to_its_choices() -> None:
    base = {"tp": 8, "cp": 1, "pp": 16, "dp": 64, "vpp": 8, "recompute": "none"}
    ok = train_memory(L405, Layout(**base, zero=2, split_ends=True), 8192, 32, H100.hbm_bytes)  # type: ignore[arg-type]
    assert ok.fits
    # ZeRO-1's full fp32 gradients, or the embedding sharing a layer's chunk, do not fit
    assert not train_memory(L405, Layout(**base, zero=1, split_ends=True), 8192, 32, H100.hbm_bytes).fits  # type: ignore[arg-type]
    assert not train_memory(L405, Layout(**base, zero=2), 8192, 32, H100.hbm_bytes).fits  # type: ignore[arg-type]


def test_mtp_module_is_trained_compute() -> None:
    from hierro.training import train_flops_per_token

    per = train_flops_per_token(DSV3, 4096)
    no_mtp = train_flops_per_token(replace(DSV3, mtp_layers=0), 4096)
    assert 1.02 < per / no_mtp < 1.08  # one MoE block, a 2h x h projection and the shared head


def test_node_limited_routing_cuts_scale_out_traffic() -> None:
    from hierro.training.step import node_limit

    assert node_limit(DSV3, 64, 8) == 4  # config.json: 4 of 8 groups, one group per node
    assert node_limit(L70, 64, 8) is None
    e = TrainEfficiency()
    assert all_to_all_s(1e9, 8, 64, 1, 8, H100, e, 4) < all_to_all_s(1e9, 8, 64, 1, 8, H100, e)


def test_dualpipe_bubble_is_smaller_than_1f1b() -> None:
    lay = Layout(pp=16, dp=64, ep=64, recompute="full")
    one = _step("deepseek-v3", lay, "fp8", ep_overlap=1.0)
    dual = _step("deepseek-v3", replace(lay, schedule="dualpipe"), "fp8", ep_overlap=1.0)
    assert dual.bubble_s < one.bubble_s
    with pytest.raises(HierroError):
        plan_training("deepseek-v3", 1e12, "h800", 2048, seq_len=4096,
                      layout=Layout(pp=15, dp=2048 // 15, schedule="dualpipe"))


def test_routed_experts_keep_no_output() -> None:
    # the router score is applied before the down-projection, so its gradient needs no expert
    # output: per routed copy the dispatched token (FP8) and the SwiGLU inputs (bf16 or FP8)
    from hierro.training.memory import E5M6_BYTES, layer_act_bytes

    moe, h = DSV3.groups[-1][0], DSV3.hidden
    at, m = moe.attn, moe.mlp
    base = layer_act_bytes(moe, h, "selective", fp8=True)
    low = layer_act_bytes(moe, h, "selective", fp8=True, low_precision=True)
    swiglu_in = 2 * (m.top_k * m.intermediate + m.shared_intermediate)  # elements per token
    attn_out = at.n_heads * at.head_dim_v
    assert base - low == pytest.approx(swiglu_in * 1.0 + attn_out * (2.0 - E5M6_BYTES))
    no_moe = replace(moe, mlp=replace(m, top_k=0))
    per_copy = (base - layer_act_bytes(no_moe, h, "selective", fp8=True)) / m.top_k
    assert per_copy == pytest.approx(h + 2 * 2 * m.intermediate)
    # low-precision caching is a property of FP8 training: no effect on bf16 GEMMs
    assert layer_act_bytes(moe, h, "selective", low_precision=True) == layer_act_bytes(moe, h, "selective")


def test_bf16_moments_cut_optimizer_states_by_a_third() -> None:
    lay = Layout(pp=16, dp=64, ep=64)
    a = train_memory(DSV3, lay, 4096, 32, H100.hbm_bytes, "fp8")
    b = train_memory(DSV3, replace(lay, moments="bf16"), 4096, 32, H100.hbm_bytes, "fp8")
    assert b.optimizer_bytes == pytest.approx(a.optimizer_bytes * 8 / 12)
    assert (b.weights_bytes, b.grads_bytes, b.activations_bytes) == (
        a.weights_bytes, a.grads_bytes, a.activations_bytes)
    c = train_memory(DSV3, replace(lay, low_precision_acts=True), 4096, 32, H100.hbm_bytes, "fp8")
    assert c.activations_bytes < a.activations_bytes


def test_recipe_pins_reach_the_searched_layout() -> None:
    kw = {"seq_len": 4096, "dtype": "fp8", "global_batch_tokens": 1024 * 4096}
    p = plan_training("deepseek-v3", 1e12, "h800", 2048,
                      fixed={"pp": 16, "ep": 64, "moments": "bf16", "low_precision_acts": 1}, **kw)  # type: ignore[arg-type]
    assert p.layout.moments == "bf16" and p.layout.low_precision_acts
    assert "Adam moments bf16" in p.layout.label()


def test_bad_recipe_is_one_line() -> None:
    with pytest.raises(HierroError, match="fp8"):
        plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024, fixed={"low_precision_acts": 1})
    with pytest.raises(HierroError, match="fp8"):
        plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024,
                      layout=Layout(tp=8, pp=4, dp=32, low_precision_acts=True))
    with pytest.raises(HierroError, match="moments"):
        plan_training("llama-3.1-70b", 1e12, "h100-sxm", 1024,
                      layout=Layout(tp=8, pp=4, dp=32, moments="fp16"))  # type: ignore[arg-type]
