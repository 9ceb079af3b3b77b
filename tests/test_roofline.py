"""The roofline (Williams, Waterman and Patterson, CACM 2009) and alpha-beta collectives.

With efficiencies of 1 and no latency, an op's time is exactly max(F / peak, B / bandwidth),
and it switches from memory- to compute-bound at the ridge point peak / bandwidth.
"""

from __future__ import annotations

import pytest

from hierro.perf import StepModel, StepShape
from hierro.perf.efficiency import Calibration, EfficiencyEntry
from hierro.perf.ops import Op
from hierro.perf.roofline import op_time
from hierro.specs import Plan, get_accelerator, get_model, weight_bytes_per_device

IDEAL = Calibration(
    source="test",
    as_of="2026",
    entries=(EfficiencyEntry(op_class="*", compute=1.0, memory=1.0, latency_s=0.0),),
)
BYTES = 1e9


@pytest.mark.parametrize("ratio", [0.01, 0.25, 0.9, 0.999])
def test_below_ridge_is_memory_bound(ratio: float) -> None:
    accel = get_accelerator("h100-sxm")
    flops = ratio * accel.ridge_point("bf16") * BYTES
    cost = op_time(Op("x", "gemm", "bf16", flops=flops, bytes=BYTES), accel, IDEAL, "vllm")
    assert cost.time_s == pytest.approx(BYTES / accel.hbm_bw_Bps, rel=1e-12)
    assert cost.bound() == "memory"


@pytest.mark.parametrize("ratio", [1.001, 1.1, 4.0, 100.0])
def test_above_ridge_is_compute_bound(ratio: float) -> None:
    accel = get_accelerator("h100-sxm")
    flops = ratio * accel.ridge_point("bf16") * BYTES
    cost = op_time(Op("x", "gemm", "bf16", flops=flops, bytes=BYTES), accel, IDEAL, "vllm")
    assert cost.time_s == pytest.approx(flops / accel.flops("bf16"), rel=1e-12)
    assert cost.bound() == "compute"


def test_at_ridge_both_times_agree() -> None:
    accel = get_accelerator("h100-sxm")
    assert accel.ridge_point("bf16") == pytest.approx(989e12 / 3.35e12, rel=1e-9)
    flops = accel.ridge_point("bf16") * BYTES
    cost = op_time(Op("x", "gemm", "bf16", flops=flops, bytes=BYTES), accel, IDEAL, "vllm")
    assert cost.compute_s == pytest.approx(cost.memory_s, rel=1e-12)


def test_fp8_uses_fp8_peak() -> None:
    accel = get_accelerator("h100-sxm")
    flops = 1e15
    cost = op_time(Op("x", "gemm", "fp8", flops=flops, bytes=1.0), accel, IDEAL, "vllm")
    assert cost.time_s == pytest.approx(flops / accel.peak_flops["fp8"], rel=1e-12)


def test_efficiency_and_latency_are_applied() -> None:
    accel = get_accelerator("h100-sxm")
    calib = Calibration(
        source="test",
        as_of="2026",
        entries=(EfficiencyEntry(op_class="*", compute=0.5, memory=0.25, latency_s=1e-6),),
    )
    op = Op("x", "gemm", "bf16", flops=0.0, bytes=BYTES, count=3)
    cost = op_time(op, accel, calib, "vllm")
    assert cost.time_s == pytest.approx(BYTES / (0.25 * accel.hbm_bw_Bps) + 3e-6, rel=1e-12)
    # an op with no work is not launched
    empty = op_time(Op("x", "gemm", "bf16", flops=0.0, bytes=0.0, count=3), accel, calib, "vllm")
    assert empty.time_s == 0.0


@pytest.mark.parametrize("ratio", [0.01, 0.5, 1.0, 2.0, 100.0])
def test_exposed_share_of_the_shorter_time(ratio: float) -> None:
    """t = max(t_c, t_m) + x · min(t_c, t_m): 0 is the roofline, 1 no overlap at all."""
    accel = get_accelerator("h100-sxm")
    flops = ratio * accel.ridge_point("bf16") * BYTES
    op = Op("x", "gemm", "bf16", flops=flops, bytes=BYTES)
    t_c, t_m = flops / accel.flops("bf16"), BYTES / accel.hbm_bw_Bps
    times = []
    for x in (0.0, 0.3, 1.0):
        calib = Calibration("test", "2026", (*IDEAL.entries, EfficiencyEntry(op_class="gemm", exposed=x)))
        times.append(float(op_time(op, accel, calib, "vllm").time_s))
        assert times[-1] == pytest.approx(max(t_c, t_m) + x * min(t_c, t_m), rel=1e-12)
    assert times[0] < times[1] < times[2]
    assert times[2] == pytest.approx(t_c + t_m, rel=1e-12)
    # the share costs most at the ridge, where the two times are equal
    if ratio == 1.0:
        assert times[2] == pytest.approx(2 * times[0], rel=1e-9)


def test_exposed_share_leaves_collectives_alone() -> None:
    calib = Calibration("test", "2026", (*IDEAL.entries, EfficiencyEntry(exposed=1.0)))
    accel = get_accelerator("h100-sxm")
    op = Op("ar", "allreduce", "bf16", flops=0.0, bytes=0.0, comm_bytes=1e8, group=8)
    assert op_time(op, accel, calib, "vllm").time_s == op_time(op, accel, IDEAL, "vllm").time_s


def _allreduce(msg: float, group: int) -> float:
    accel = get_accelerator("h100-sxm")
    op = Op("ar", "allreduce", "bf16", flops=0.0, bytes=0.0, comm_bytes=msg, group=group)
    return float(op_time(op, accel, IDEAL, "vllm").time_s)


def test_allreduce_time_grows_with_message_size() -> None:
    times = [_allreduce(m, 8) for m in (1e3, 1e5, 1e7, 1e9)]
    assert times == sorted(times)
    assert len(set(times)) == len(times)


def test_allreduce_time_grows_with_group() -> None:
    times = [_allreduce(1e8, g) for g in (2, 4, 8)]
    assert times[0] < times[1] < times[2]


def test_allreduce_ring_volume() -> None:
    """A ring all-reduce of M bytes over g ranks moves 2(g-1)/g M per rank (Thakur et al. 2005)."""
    accel = get_accelerator("h100-sxm")
    assert _allreduce(1e9, 8) == pytest.approx(2 * 7 / 8 * 1e9 / accel.scale_up_bw_Bps, rel=1e-12)


def _sums(model_id: str, plan: Plan, shape: StepShape) -> tuple[float, float]:
    sm = StepModel(get_model(model_id), get_accelerator("h100-sxm"), plan, calib=IDEAL)
    cost = sm.cost(shape)
    compute = sum(float(o.compute_s) for o in cost.ops)
    memory = sum(float(o.memory_s) for o in cost.ops)
    return compute, memory


def test_decode_batch_one_is_memory_bound() -> None:
    compute, memory = _sums("llama-3.1-70b", Plan(tp=4), StepShape(decode_seqs=1.0, decode_ctx=1024.0))
    assert memory > 50 * compute


def test_prefill_8192_is_compute_bound() -> None:
    shape = StepShape(prefill_tokens=8192.0, prefill_seqs=1.0, sampled=1.0)
    compute, memory = _sums("llama-3.1-70b", Plan(tp=4), shape)
    assert compute > 5 * memory


def test_decode_batch_one_reads_all_weights() -> None:
    """At batch 1 the step time is about the weight bytes per device over HBM bandwidth
    (every weight except the embedding table, of which a decode reads one row)."""
    arch, accel, plan = get_model("llama-3.1-70b"), get_accelerator("h100-sxm"), Plan(tp=4)
    sm = StepModel(arch, accel, plan, calib=IDEAL)
    t = float(sm.time(StepShape(decode_seqs=1.0, decode_ctx=16.0)))
    read = weight_bytes_per_device(arch, plan) - 2.0 * arch.params().embedding / plan.tp
    floor = read / accel.hbm_bw_Bps
    assert t >= 0.99 * floor
    assert t < 1.2 * floor
