"""What a model's fleet costs per token, two ways and over two bases, and its margin against a
dated public API price.

Per model, from the allocation's purchases (:mod:`hierro.plan.allocate`)::

    operating point:  cost per request = $/GPU-h x devices / (3600 x req/s per replica)
    fleet at mean:    cost per request = fleet $/h held / (3600 x mean req/s served)
    $/Mtok input  = cost per request x input share / isl x 1e6
    $/Mtok output = cost per request x (1 - input share) / osl x 1e6

(input share: the accelerator-time allocation of :func:`hierro.econ.token_economics`). Both
are steady-state figures: the fleet once online. Over the horizon, the fleet's cost paid within
it over the tokens it delivers in it (the timeline: owned capacity from the month it comes
online, rented capacity within its term) is the effective ``horizon_usd_per_mtok``.
Margin: the request shape sold at the scenario's dated API price (:func:`hierro.econ.margin_at`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hierro.econ import api_price, margin_at
from hierro.plan.allocate import Source, Take
from hierro.plan.result import Binding, FleetLine, ModelPlan
from hierro.plan.scenario import ModelDemand, Scenario
from hierro.plan.serving import ServingOption
from hierro.units import HOUR, MEGA

__all__ = ["fleet_lines", "model_plan", "priced"]


def fleet_lines(takes: Sequence[Take], sources: Sequence[Source], s: Scenario) -> tuple[FleetLine, ...]:
    """Purchases merged by source: accelerators, USD paid, MW, effective $/GPU-h (paid / busy hours)."""
    merged: dict[int, list[float]] = {}
    for t in takes:
        acc = merged.setdefault(t.source, [0.0, 0.0, 0.0])
        acc[0] += t.accelerators
        acc[1] += t.usd
        acc[2] += t.busy_hours
    out = []
    for k, (n, usd, busy) in merged.items():
        src = sources[k]
        where = s.sites[src.site].label if src.site is not None else None
        out.append(FleetLine(src.gpu, src.label, where, n, usd, n * src.W / MEGA,
                             usd / busy if busy > 0 else src.usd_per_busy_hour))
    return tuple(out)


def model_plan(m: ModelDemand, opts: Sequence[ServingOption], bad: Sequence[tuple[str, str]], takes: Sequence[Take],
               met: float, binding: Binding | None, sources: Sequence[Source], s: Scenario) -> ModelPlan:
    """The steady-state figures of ``m``'s fleet (see the module docstring)."""
    d = m.demand
    fleet = fleet_lines(takes, sources, s)
    by_gpu = {o.gpu: o for o in opts}
    n_by_gpu: dict[str, float] = {}
    held_usd_h = 0.0
    op_cost_req = 0.0
    share = 0.0
    for t in takes:
        src = sources[t.source]
        n_by_gpu[t.gpu] = n_by_gpu.get(t.gpu, 0.0) + t.accelerators
        held_usd_h += t.accelerators * src.usd_per_busy_hour * src.tco.inputs.utilisation
        o = by_gpu[t.gpu]
        w = t.accelerators / o.accelerators  # fraction of the peak this step carries
        op_cost_req += w * src.usd_per_busy_hour * o.devices / (HOUR * o.req_s_per_replica)
        share += w * o.input_cost_share
    capacity = sum(n / by_gpu[g].devices * by_gpu[g].req_s_per_replica for g, n in n_by_gpu.items())
    served_peak = d.peak_req_s * met
    used = [by_gpu[g] for g in n_by_gpu]
    c_in = c_out = f_in = f_out = f_all = None
    if met > 0:
        share /= met
        cost_req = op_cost_req / met
        c_in = cost_req * share / d.isl * MEGA
        c_out = cost_req * (1 - share) / d.osl * MEGA
        fleet_req = held_usd_h / (HOUR * d.mean_req_s * met)
        f_in = fleet_req * share / d.isl * MEGA
        f_out = fleet_req * (1 - share) / d.osl * MEGA
        f_all = fleet_req / (d.isl + d.osl) * MEGA
    util = served_peak / capacity if capacity > 0 else 0.0
    return ModelPlan(
        name=m.name, model_id=m.model, isl=d.isl, osl=d.osl, mean_req_s=d.mean_req_s, peak_req_s=d.peak_req_s,
        peak_to_mean=d.peak_to_mean, slos=tuple((t.name, t.limit_s) for t in m.slo_targets()),
        options=tuple(opts), rejected=tuple(bad), fleet=fleet, served_fraction=met,
        accelerators=sum(n_by_gpu.values()), MW=sum(f.MW for f in fleet), usd=sum(f.usd for f in fleet),
        capacity_req_s=capacity, utilisation_peak=util, utilisation_mean=util / d.peak_to_mean,
        ttft_p99_s=max((o.ttft_p99_s for o in used), default=None),
        tpot_p99_s=max((o.tpot_p99_s for o in used), default=None),
        usd_per_mtok_input=c_in, usd_per_mtok_output=c_out,
        fleet_usd_per_mtok_input=f_in, fleet_usd_per_mtok_output=f_out, fleet_usd_per_mtok=f_all,
        binding=binding,
    )


def priced(m: ModelPlan, s: Scenario, online: int | None, peak_months: float, tokens: float) -> ModelPlan:
    """``m`` with its margin against the scenario's API price, the month its peak is first
    carried, the months it is carried, and the tokens and effective $/Mtok over the horizon."""
    spec = next(x for x in s.models if x.name == m.name)
    api = api_price(spec.api_price) if spec.api_price else None
    margin = slo = None
    if api is not None and m.fleet_usd_per_mtok_input is not None and m.fleet_usd_per_mtok_output is not None:
        margin = margin_at(api, m.isl, m.osl, m.fleet_usd_per_mtok_input, m.fleet_usd_per_mtok_output)
    if api is not None and m.usd_per_mtok_input is not None and m.usd_per_mtok_output is not None:
        slo = margin_at(api, m.isl, m.osl, m.usd_per_mtok_input, m.usd_per_mtok_output)
    return dataclasses.replace(
        m, api=api, margin=margin, margin_slo_point=slo, online_month=online, peak_months=peak_months,
        horizon_tokens=tokens, horizon_usd_per_mtok=m.usd / tokens * MEGA if tokens > 0 else None,
    )
