"""KV-cache size and memory fit against hand-computed values (STYLE 5.8a).

Per token and layer, GQA caches K and V: n_kv_heads x head_dim x 2 elements; MLA caches one
latent of kv_lora_rank plus a rotary key of rope_dim (DeepSeek-V2, section 2.1).
"""

from __future__ import annotations

import pytest

from hierro.errors import DoesNotFitError
from hierro.specs import (
    Plan,
    check_fits,
    get_accelerator,
    get_model,
    kv_bytes_per_seq,
    memory_breakdown,
)

CTX = 4096  # a multiple of the 16-token KV page, so no page rounding


def test_llama31_70b_gqa_kv_per_token() -> None:
    arch = get_model("llama-3.1-70b")
    elems = 80 * 8 * 128 * 2
    assert elems == 163_840
    assert arch.kv_elems_per_token_full() == elems
    assert arch.kv_elems(CTX) == elems * CTX
    # bf16: 2 bytes per element
    assert kv_bytes_per_seq(arch, Plan(), CTX) == 327_680 * CTX


def test_llama2_7b_mha_kv_per_token() -> None:
    arch = get_model("llama-2-7b")
    assert arch.kv_elems_per_token_full() == 32 * 32 * 128 * 2 == 262_144
    assert kv_bytes_per_seq(arch, Plan(), CTX) == 2 * 262_144 * CTX


def test_deepseek_v3_mla_kv_per_token() -> None:
    arch = get_model("deepseek-v3")
    assert arch.kv_elems_per_token_full() == 61 * (512 + 64) == 35_136
    assert arch.kv_elems(CTX) == 35_136 * CTX


def test_gpt_oss_sliding_layers_cap_at_window() -> None:
    arch = get_model("gpt-oss-120b")
    per_layer = 8 * 64 * 2
    assert arch.kv_elems_per_token_full() == 36 * per_layer
    assert arch.kv_elems(4096) == 18 * per_layer * 4096 + 18 * per_layer * 128
    # below the window every layer holds every token
    assert arch.kv_elems(100) == 36 * per_layer * 100


def test_qwen35_linear_layers_have_fixed_state() -> None:
    arch = get_model("qwen3.5-397b-a17b")
    linear = [(lay, n) for lay, n in arch.groups if lay.attn.kind == "linear"]
    full = [(lay, n) for lay, n in arch.groups if lay.attn.kind != "linear"]
    assert linear and full
    state = sum(n * lay.attn.state_elems() for lay, n in linear)
    per_token = sum(n * lay.attn.kv_elems_per_token() for lay, n in full)
    assert state > 0
    assert all(lay.attn.kv_elems_per_token() == 0 for lay, _ in linear)
    for ctx in (1, 1000, 4096, 131072):
        assert arch.kv_elems(ctx) == state + per_token * ctx
    # the linear layers' share does not grow with the context
    assert arch.kv_elems(8192) - arch.kv_elems(4096) == per_token * 4096


@pytest.mark.parametrize("model_id", ["llama-3.1-70b", "deepseek-v3", "gpt-oss-120b", "llama-2-7b"])
def test_fp8_kv_halves_bf16(model_id: str) -> None:
    arch = get_model(model_id)
    bf16 = kv_bytes_per_seq(arch, Plan(kv_dtype="bf16"), CTX)
    fp8 = kv_bytes_per_seq(arch, Plan(kv_dtype="fp8"), CTX)
    assert fp8 == pytest.approx(bf16 / 2, rel=1e-12)


def test_kv_context_rounds_up_to_pages() -> None:
    arch = get_model("llama-3.1-8b")
    assert kv_bytes_per_seq(arch, Plan(), 1) == kv_bytes_per_seq(arch, Plan(), 16)
    assert kv_bytes_per_seq(arch, Plan(), 17) == kv_bytes_per_seq(arch, Plan(), 32)


@pytest.mark.parametrize(("tp", "shard"), [(1, 1), (2, 2), (4, 4), (8, 8), (16, 8), (32, 8), (64, 8)])
def test_gqa_kv_shards_over_at_most_kv_heads(tp: int, shard: int) -> None:
    """llama-3.1-70b has 8 KV heads: beyond tp=8 they are replicated, not split further."""
    arch = get_model("llama-3.1-70b")
    Plan(tp=tp).check(arch)  # 64 query heads: all these tp are valid
    one = kv_bytes_per_seq(arch, Plan(tp=1), CTX)
    assert kv_bytes_per_seq(arch, Plan(tp=tp), CTX) == pytest.approx(one / shard, rel=1e-12)


@pytest.mark.parametrize("tp", [2, 8, 16])
def test_mla_kv_is_not_reduced_by_tp(tp: int) -> None:
    arch = get_model("deepseek-v3")
    one = kv_bytes_per_seq(arch, Plan(tp=1), CTX)
    assert kv_bytes_per_seq(arch, Plan(tp=tp), CTX) == pytest.approx(one, rel=1e-12)


def test_kv_per_device_splits_over_pipeline_stages() -> None:
    arch = get_model("llama-3.1-70b")  # 80 layers
    one = kv_bytes_per_seq(arch, Plan(), CTX)
    assert kv_bytes_per_seq(arch, Plan(pp=2), CTX) == pytest.approx(one / 2, rel=1e-12)
    assert kv_bytes_per_seq(arch, Plan(pp=3), CTX) == pytest.approx(one * 27 / 80, rel=1e-12)


def test_405b_bf16_does_not_fit_one_h100() -> None:
    arch = get_model("llama-3.1-405b")
    mem = memory_breakdown(arch, get_accelerator("h100-sxm"), Plan(), context=2048)
    assert not mem.fits
    assert mem.weights_bytes > 800e9  # ~405e9 params x 2 bytes
    with pytest.raises(DoesNotFitError) as info:
        check_fits(mem, what="llama-3.1-405b bf16 on 1x h100-sxm")
    msg = str(info.value)
    assert "does not fit" in msg
    assert "GB" in msg


def test_8b_fits_h100_with_many_sequences() -> None:
    arch = get_model("llama-3.1-8b")
    mem = memory_breakdown(arch, get_accelerator("h100-sxm"), Plan(), context=2048)
    check_fits(mem, what="llama-3.1-8b")
    assert mem.fits
    assert mem.max_seqs > 100
    # weights: 8.03e9 params x 2 bytes
    assert mem.weights_bytes == pytest.approx(2 * 8.03e9, rel=0.01)
    # the KV budget holds max_seqs sequences but not one more
    assert mem.max_seqs * mem.kv_bytes_per_seq <= mem.kv_budget_bytes
    assert (mem.max_seqs + 1) * mem.kv_bytes_per_seq > mem.kv_budget_bytes


def test_dp_attention_multiplies_sequences_not_kv_per_rank() -> None:
    arch = get_model("deepseek-r1")
    accel = get_accelerator("h200-sxm")
    tp_plan = Plan(tp=8, ep=8, weight_dtype="fp8")
    dp_plan = Plan(tp=8, ep=8, weight_dtype="fp8", dp_attention=True)
    tp_mem = memory_breakdown(arch, accel, tp_plan, context=2048)
    dp_mem = memory_breakdown(arch, accel, dp_plan, context=2048)
    assert dp_mem.kv_bytes_per_seq == pytest.approx(tp_mem.kv_bytes_per_seq, rel=1e-12)
    assert dp_mem.max_seqs > tp_mem.max_seqs


def test_trtllm_sizes_kv_from_the_memory_left_free() -> None:
    """TensorRT-LLM's ``free_gpu_memory_fraction`` (0.9) is a share of what the weights and
    workspace leave; vLLM's ``gpu_memory_utilization`` a share of the whole device. With
    Llama-3.1-70B in FP8 on one 80 GB H100 the weights nearly fill the device, so the first rule
    keeps several times the KV of the second (the TensorRT-LLM perf overview runs this layout)."""
    from hierro.perf import kv_of_free_memory

    arch, h100 = get_model("llama-3.1-70b"), get_accelerator("h100-sxm")
    plan = Plan(weight_dtype="fp8", kv_dtype="fp8")
    total = memory_breakdown(arch, h100, plan, context=2048)
    free = memory_breakdown(arch, h100, plan, context=2048, of_free=kv_of_free_memory("trtllm"))
    left = h100.hbm_bytes - free.weights_bytes - free.workspace_bytes
    assert free.kv_budget_bytes == pytest.approx(0.9 * left)
    assert total.kv_budget_bytes == pytest.approx(0.9 * h100.hbm_bytes - total.weights_bytes - total.workspace_bytes)
    assert free.max_seqs > 3 * total.max_seqs
    # the rule follows the engine family, whatever orchestrates it
    assert kv_of_free_memory("dynamo-trtllm") and kv_of_free_memory("triton-trtllm")
    assert not kv_of_free_memory("vllm") and not kv_of_free_memory("sglang")
    # 0.9 (H - W) >= 0.9 H - W: the free-share rule never holds less, and where memory is
    # plentiful both leave room
    small = get_model("llama-3.1-8b")
    a = memory_breakdown(small, h100, plan, context=2048)
    b = memory_breakdown(small, h100, plan, context=2048, of_free=True)
    assert b.max_seqs >= a.max_seqs > 0


def test_engines_kv_rule_reaches_the_estimate_and_the_simulator() -> None:
    """The same layout holds more sequences under TensorRT-LLM than under vLLM where the weights
    nearly fill the device, in the steady-state estimate and in the simulator's KV pool."""
    from hierro.perf import StepModel, estimate
    from hierro.sim.cluster import kv_pool_blocks

    arch, h100 = get_model("llama-3.1-70b"), get_accelerator("h100-sxm")
    plan = Plan(weight_dtype="fp8", kv_dtype="fp8")
    est = {fw: estimate(StepModel(arch, h100, plan, fw), isl=128, osl=2048, offline=True) for fw in ("vllm", "trtllm")}
    assert est["trtllm"].memory.max_seqs > 3 * est["vllm"].memory.max_seqs
    assert est["trtllm"].out_tok_s > 2 * est["vllm"].out_tok_s
    blocks = {fw: kv_pool_blocks(StepModel(arch, h100, plan, fw)) for fw in ("vllm", "trtllm", "sglang")}
    assert blocks["trtllm"] > 3 * blocks["vllm"] and blocks["sglang"] == blocks["vllm"]
