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


def test_simulate_and_tco_through_the_public_api() -> None:
    import numpy as np

    from hierro.sim import Fixed

    sm = hierro.StepModel(hierro.get_model("llama-3.1-8b"), hierro.get_accelerator("h100-sxm"), hierro.Plan(tp=1))
    wl = hierro.synthetic(200, Fixed(512), Fixed(64), np.random.default_rng(0), rate=5.0)
    r = hierro.simulate(sm, wl)
    assert isinstance(r, hierro.SimResult) and r.ttft.p99 >= r.ttft.p50 > 0
    t = hierro.tco_for("h100-sxm")
    econ = hierro.token_economics(hierro.estimate(sm, isl=512, osl=64, concurrency=8), t)
    assert econ is not None and t.usd_per_gpu_hour > 0
