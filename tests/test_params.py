"""Parameter counts of every catalog model against the publisher's figure (STYLE 5.8a).

Tolerance: a published figure is either exact (6,738,415,616) or rounded ("70B", "46.7B",
"1.23B"). A rounded figure can be off by half its rounding unit, so we allow
max(1 %, unit / 2). Publishers also differ on what "active" means: gpt-oss excludes the
input embedding, DeepSeek counts embedding and LM head, so the published active count must lie
between hierro's active count without both and with both.
"""

from __future__ import annotations

import math

import pytest

from hierro.catalog import model_files
from hierro.specs import get_model

MODEL_IDS = sorted(model_files())

_REL_TOL = 0.01
_SIG_DIGITS = 12  # enough for exact counts (1e12 params), few enough to hide float noise


def _rounding_unit(x: float) -> float:
    """The unit a published count was rounded to, read from its significant digits.

    The figure is expressed in the unit a publisher writes (billions, millions, or plain
    parameters); integer digits in that unit are always significant ("70B" has unit 1e9,
    "400B" too), and each decimal written adds one digit ("46.7B" -> 0.1e9, "1.23B" -> 0.01e9).
    An exact count ("6738415616") has unit 1.
    """
    scale = 1e9 if x >= 1e9 else 1e6 if x >= 1e6 else 1.0
    text = f"{x / scale:.{_SIG_DIGITS}g}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return max(scale * 10.0**-decimals, 1.0)


def _tolerance(published: float) -> float:
    return max(_REL_TOL * published, _rounding_unit(published) / 2)


@pytest.mark.parametrize(
    ("x", "unit"),
    [
        (70e9, 1e9),
        (400e9, 1e9),
        (46.7e9, 0.1e9),
        (1.23e9, 0.01e9),
        (1026.5e9, 0.1e9),
        (32.8e9, 0.1e9),  # stored as 32799999999.999996
        (6738415616, 1.0),
        (33743970304, 1.0),
        (350e6, 1e6),
    ],
)
def test_rounding_unit(x: float, unit: float) -> None:
    assert _rounding_unit(x) == pytest.approx(unit, rel=1e-9)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_total_params_match_published(model_id: str) -> None:
    pub = model_files()[model_id].published_params
    total = get_model(model_id).params().total
    if pub.includes:
        # The published total counts parts hierro does not model (e.g. a vision encoder) whose
        # size is unpublished: hierro's count must be below it, and not by more than 2 %.
        assert 0.98 * pub.total <= total <= 1.01 * pub.total, (model_id, total, pub.total, pub.includes)
    else:
        assert abs(total - pub.total) <= _tolerance(pub.total), (model_id, total, pub.total)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_active_params_match_published(model_id: str) -> None:
    pub = model_files()[model_id].published_params
    p = get_model(model_id).params()
    tol = _tolerance(pub.active)
    low = p.active - p.embedding - p.lm_head - tol
    high = p.active + tol
    assert low <= pub.active <= high, (model_id, pub.active, low, high)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_param_count_parts_are_consistent(model_id: str) -> None:
    p = get_model(model_id).params()
    assert 0 < p.active <= p.total
    assert p.embedding > 0
    assert p.non_embedding == p.total - p.embedding - p.lm_head > 0
    if get_model(model_id).tied_embeddings:
        assert p.lm_head == 0
    else:
        assert p.lm_head == p.embedding


@pytest.mark.parametrize(
    ("model_id", "exact_total"),
    [
        ("llama-3.1-8b", 8_030_261_248),  # Hugging Face safetensors count
        ("llama-2-7b", 6_738_415_616),
        ("mixtral-8x7b", 46_702_792_704),
    ],
)
def test_exact_well_known_counts(model_id: str, exact_total: int) -> None:
    assert get_model(model_id).params().total == exact_total


def test_dense_models_have_all_params_active() -> None:
    for model_id in MODEL_IDS:
        arch = get_model(model_id)
        if not arch.is_moe:
            p = arch.params()
            assert p.active == p.total, model_id


def test_moe_active_is_a_small_fraction() -> None:
    """Sanity of the MoE arithmetic: DeepSeek-V3 is 671B total and about 37B active."""
    p = get_model("deepseek-v3").params()
    assert p.total == pytest.approx(671e9, rel=0.01)
    assert p.active == pytest.approx(37e9, rel=0.03)
    assert math.isclose(p.active / p.total, 37 / 671, rel_tol=0.05)
