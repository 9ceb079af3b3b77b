"""The public API is curated: everything exported is listed, sorted, and importable."""

from __future__ import annotations

import hierro


def test_all_is_sorted_and_complete() -> None:
    assert hierro.__all__ == sorted(hierro.__all__)
    import types

    public = {
        name for name, value in vars(hierro).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(hierro.__all__) - {"__version__"}


def test_python_api_end_to_end() -> None:
    sm = hierro.StepModel(
        hierro.get_model("llama-3.1-8b"), hierro.get_accelerator("h100-sxm"), hierro.Plan(tp=1)
    )
    e = hierro.estimate(sm, isl=512, osl=256, concurrency=8)
    assert isinstance(e, hierro.Estimate)
    assert 0 < e.tpot_s < e.e2e_s
    assert e.out_tok_s_per_gpu > 0
