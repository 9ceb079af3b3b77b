"""Published training runs within stated tolerances, and the efficiency fit they pin.

One compute efficiency (``TRAIN_COMPUTE_EFFICIENCY``) is fitted on Llama 3 405B at 8,192 H100s
and checked on the other anchors. Tolerances state what the model achieves, not a target:
Llama 3 at 16k within the published 38-43% band; MegaScale (other hardware family, model shape
approximated) within 20%; DeepSeek-V3 at the bf16 peak within 20% of the 2.788M GPU-hours; at
the fp8 peak the model is ~2x too fast (FP8's realised gain is far below its 2x peak).
"""

from __future__ import annotations

import pytest

from hierro.training import TRAIN_COMPUTE_EFFICIENCY
from hierro.training.anchors import ANCHORS, fit_compute_efficiency, predict_anchor

BY_NAME = {a.name: a for a in ANCHORS}


def test_stored_efficiency_is_the_fit() -> None:
    assert fit_compute_efficiency() == pytest.approx(TRAIN_COMPUTE_EFFICIENCY, abs=0.002)


def test_llama3_405b_8k_fit_anchor() -> None:
    assert predict_anchor(BY_NAME["llama3-405b-8k"]) == pytest.approx(0.43, abs=0.005)


def test_llama3_405b_16k_in_published_band() -> None:
    mfu = predict_anchor(BY_NAME["llama3-405b-16k"])
    assert 0.38 <= mfu <= 0.43
    assert mfu == pytest.approx(0.41, abs=0.02)


def test_megascale_175b_within_20_percent() -> None:
    mfu = predict_anchor(BY_NAME["megascale-175b-12k"])
    assert mfu == pytest.approx(0.552, rel=0.20)


def test_deepseek_v3_gpu_hours_bf16_peak_within_20_percent() -> None:
    hours = predict_anchor(BY_NAME["deepseek-v3-bf16"])
    assert hours == pytest.approx(2.788e6, rel=0.20)


def test_deepseek_v3_fp8_peak_is_too_fast_known_gap() -> None:
    # documents the gap: the fp8 peak x the bf16-fitted efficiency undershoots by ~40-50%
    hours = predict_anchor(BY_NAME["deepseek-v3-fp8"])
    assert 0.45 * 2.788e6 <= hours <= 0.7 * 2.788e6
