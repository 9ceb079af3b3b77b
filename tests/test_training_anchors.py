"""Published training runs within stated tolerances, and the efficiency fit they pin.

One compute efficiency (``TRAIN_COMPUTE_EFFICIENCY``) is fitted on Llama 3 405B at 8,192 H100s
at its published layout and checked, with no per-run factor, on the other anchors: Llama 3 at
16k within the published 38-43% band; MegaScale 175B (another hardware family, TP and PP
overlapped) within 10%; Megatron-Bridge's Llama 3.1 405B in FP8 within 15%. DeepSeek-V3's
published layout and memory recipe fit an 80 GB H800; its GPU-hours at that layout fall just
outside 15%, a strict expected failure (``Anchor.xfail`` says why).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from hierro.errors import DoesNotFitError
from hierro.specs import get_accelerator, get_model
from hierro.training import (
    TRAIN_COMPUTE_EFFICIENCY,
    TrainEfficiency,
    TrainMemory,
    reliability,
    step_time,
)
from hierro.training.anchors import (
    ANCHORS,
    fit_compute_efficiency,
    plan_anchor,
    predict_anchor,
    published_layout,
)

BY_NAME = {a.name: a for a in ANCHORS}
DS = BY_NAME["deepseek-v3-pretrain"]


def _param(name: str) -> object:
    a = BY_NAME[name]
    if a.xfail:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=a.xfail,
                                                          raises=(DoesNotFitError, AssertionError)))
    return name


def test_stored_efficiency_is_the_fit() -> None:
    assert fit_compute_efficiency() == pytest.approx(TRAIN_COMPUTE_EFFICIENCY, abs=0.002)


@pytest.mark.parametrize("name", [_param(n) for n in sorted(BY_NAME)])
def test_anchor_within_stated_tolerance(name: str) -> None:
    a = BY_NAME[name]
    assert predict_anchor(a) == pytest.approx(a.published, rel=a.rel_tol)


def test_llama3_405b_16k_in_published_band() -> None:
    assert 0.38 <= predict_anchor(BY_NAME["llama3-405b-16k"]) <= 0.43


@pytest.mark.parametrize("name", ["llama3-405b-8k", "llama3-405b-16k"])
def test_llama3_runs_at_its_published_layout_without_recomputation(name: str) -> None:
    # arXiv:2407.21783 table 4 and §3.3.2: TP8 CP1 PP16, FSDP sharding gradients and optimizer
    # states, no activation checkpointing at 8K tokens; interleaved (V searched)
    p = plan_anchor(BY_NAME[name])
    lay = p.layout
    assert (lay.tp, lay.cp, lay.pp, lay.zero, lay.recompute) == (8, 1, 16, 2, "none")
    assert lay.split_ends and lay.vpp > 1
    assert p.step.memory.fits


def _deepseek_step() -> tuple[float, bool]:
    """GPU-hours of DeepSeek-V3's pre-training at its published layout, memory not checked."""
    lay = published_layout(DS)
    eff = TrainEfficiency(**dict(DS.stack))
    model = get_model(DS.model)
    st = step_time(model, lay, get_accelerator(DS.gpu), 8, DS.seq_len,
                   round(DS.batch_tokens / DS.seq_len), DS.dtype, eff)
    good = reliability(DS.gpus, model.params().total).goodput
    return DS.tokens / st.tokens_per_step * st.step_s / good * DS.gpus / 3600, st.memory.fits


def test_deepseek_v3_published_layout_fits() -> None:
    # arXiv:2412.19437 §3.2.3, §3.3.3: recomputed norms and MLA up-projections, bf16 Adam moments,
    # FP8 linear inputs, E5M6 attention output and FP8 SwiGLU inputs; DualPipe's two stages
    assert _deepseek_step()[1]
    mem = plan_anchor(DS).step.memory
    assert mem.fits and mem.total_bytes < 80e9


def test_deepseek_v3_fits_only_with_its_stated_savings() -> None:
    # without the low-precision activation caching the published layout overflows; bf16 moments
    # save a third of the optimizer states
    lay = published_layout(DS)
    model, acc = get_model(DS.model), get_accelerator(DS.gpu)

    def mem(**without: object) -> TrainMemory:
        return step_time(model, replace(lay, **without), acc, 8, DS.seq_len,  # type: ignore[arg-type]
                         round(DS.batch_tokens / DS.seq_len), DS.dtype,
                         TrainEfficiency(**dict(DS.stack))).memory

    assert not mem(low_precision_acts=False).fits
    assert mem(moments="fp32").optimizer_bytes == pytest.approx(1.5 * mem().optimizer_bytes)


@pytest.mark.xfail(strict=True, reason="step model: 2.22M GPU-hours at the published layout, "
                   "16.6% under 2.664M (tolerance 15%)")
def test_deepseek_v3_gpu_hours_at_published_layout() -> None:
    assert _deepseek_step()[0] == pytest.approx(DS.published, rel=DS.rel_tol)


def test_deepseek_v3_at_published_layout_is_within_a_quarter() -> None:
    # what the model does say about DeepSeek-V3: it fits, and the time is close
    hours, fits = _deepseek_step()
    assert fits
    assert 0.75 < hours / DS.published < 1.0


def test_fp8_is_not_twice_as_fast_as_bf16() -> None:
    # only linear layers run at the fp8 peak; attention, head and communication do not speed up
    a = BY_NAME["nemo-llama31-405b-fp8-1k"]
    fp8 = plan_anchor(a).step
    bf16 = plan_anchor(type(a)(**{**{f: getattr(a, f) for f in a.__dataclass_fields__}, "dtype": "bf16"})).step
    speedup = fp8.tokens_per_s / bf16.tokens_per_s
    assert 1.2 < speedup < 2.0
