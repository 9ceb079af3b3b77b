"""What each instrument buys: GPU-hours, MW, capex, token capacity, effective $/GPU-h and
$/Mtok, and when it comes online.

Per instrument, from the allocation's purchases (:mod:`hierro.plan.allocate`) and the timeline::

    GPU-hours      = busy accelerator-hours paid within the horizon
                     (owned: from the month each unit comes online; rented: within the term)
    $/GPU-h        = spent / GPU-hours
    peak tokens/s  = accelerators x tokens/s per accelerator at the SLO point of what they serve
                     (growth pool: the first served model's; training accelerators make none)
    tokens/day     = peak tokens/s x 86,400
    horizon tokens = busy hours x 3600 x tokens/s per accelerator, over token-making accelerators
    $/Mtok         = spend on token-making accelerators / horizon tokens x 1e6
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hierro.plan.allocate import Source, Take
from hierro.plan.bindings import GROWTH
from hierro.plan.result import InstrumentUse, ModelPlan
from hierro.plan.timeline import Rate, Timeline
from hierro.units import HOUR, MEGA

__all__ = ["instrument_use", "rates"]

_DAY_S = 86400.0


def rates(models: Sequence[ModelPlan], primary: ModelPlan | None) -> dict[str, dict[str, Rate]]:
    """Purpose -> accelerator -> what one makes at its SLO point (growth: the first served model's)."""
    out: dict[str, dict[str, Rate]] = {}
    for m in models:
        out[m.name] = {o.gpu: Rate(o.req_s_per_gpu * (m.isl + m.osl), o.out_tok_s_per_gpu, o.req_s_per_gpu)
                       for o in m.options}
    if primary is not None:
        out[GROWTH] = out[primary.name]
    return out


def instrument_use(i: int, label: str, investor: str | None, amount: float, left: float, term: float, kind: str,
                   takes: Sequence[Take], sources: Sequence[Source], rates: Mapping[str, Mapping[str, Rate]],
                   timeline: Timeline) -> InstrumentUse:
    """What instrument ``i`` bought (see the module docstring)."""
    mine = [t for t in takes if sources[t.source].instrument == i]
    busy = sum(t.busy_hours for t in mine)
    spent = amount - left
    tok_s = out_s = usd_tok = tokens = 0.0
    for t in mine:
        r = rates.get(t.purpose, {}).get(t.gpu)
        if r is None:
            continue  # training, or an accelerator no model is served on
        tok_s += t.accelerators * r.tok_s
        out_s += t.accelerators * r.out_tok_s
        usd_tok += t.usd
        tokens += t.busy_hours * HOUR * r.tok_s
    tranches = [tr for tr in timeline.tranches if tr.instrument == i]
    firsts = [tr.first_month for tr in tranches]
    fulls = [tr.full_month for tr in tranches]
    return InstrumentUse(
        label=label, kind=kind, investor=investor, amount_usd=amount, spent_usd=spent, left_usd=left,
        accelerators=sum(t.accelerators for t in mine), gpu_hours=busy,
        MW=sum(t.accelerators * sources[t.source].W for t in mine) / MEGA,
        capex_usd=sum(t.accelerators * sources[t.source].tco.capex_usd for t in mine),
        usd_per_gpu_hour=spent / busy if busy > 0 else None, term_years=term,
        peak_tok_s=tok_s, peak_out_tok_s=out_s, tokens_per_day=tok_s * _DAY_S,
        usd_per_mtok=usd_tok / tokens * MEGA if tokens > 0 else None, horizon_tokens=tokens,
        first_online_month=min((m for m in firsts if m is not None), default=None),
        full_online_month=None if not fulls or None in fulls else max(m for m in fulls if m is not None),
    )
