"""Token economics: cost per million tokens, energy per token, tokens per MW, margin vs APIs.

SemiAnalysis InferenceX (InferenceX-app @77ca49a, ``useThroughputData.ts``; METHODS.md §1)::

    cost_per_Mtok       = costPerHour / ((tps * 3600) / 1_000_000)     # tps: tokens/s per GPU
    tokens_per_s_per_MW = tps * 1000 / power_kW_per_gpu               # all-in utility kW
    joules_per_token    = power_kW_per_gpu * 1000 / tps

InferenceX reports the total-token variant (input + output throughput) and output-only and
input-only variants that charge the whole hour to one kind of token.

**Allocation between input and output tokens** (hierro's choice): by the accelerator time
each consumes. A request's input tokens cost the time of its prefill step (one prompt of
``isl`` tokens), its output tokens cost its share of the batched decode steps,
``(osl - 1) x t_decode x pp / batch``; the shares split the request's cost, so
``isl x c_in + osl x c_out`` equals the cost of the request exactly. Cached input tokens skip
the prefill GEMMs; they are priced at the input cost times the ratio the public APIs charge
(``cached_input_cost_ratio`` in ``finance.yaml``, 0.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from hierro.econ.defaults import api_price, finance
from hierro.econ.schema import ApiPrice
from hierro.econ.tco import TcoBreakdown
from hierro.errors import HierroError
from hierro.perf import Estimate
from hierro.units import HOUR, MEGA

__all__ = [
    "Margin",
    "TokenEconomics",
    "joules_per_token",
    "margin_at",
    "margin_vs",
    "token_economics",
    "tokens_per_s_per_mw",
    "usd_per_mtok",
]


def usd_per_mtok(usd_per_gpu_hour: float, tok_s_per_gpu: float) -> float:
    """$/Mtok = $/GPU-h / (tokens/s per GPU x 3600 / 1e6) (InferenceX ``cost_per_Mtok``)."""
    if tok_s_per_gpu <= 0:
        raise HierroError(f"tokens/s per GPU must be > 0, got {tok_s_per_gpu}")
    if usd_per_gpu_hour < 0:
        raise HierroError(f"$/GPU-hour must be >= 0, got {usd_per_gpu_hour}")
    return usd_per_gpu_hour / (tok_s_per_gpu * HOUR / MEGA)


def joules_per_token(all_in_W_per_gpu: float, tok_s_per_gpu: float) -> float:
    """J/token = all-in W per GPU / tokens/s per GPU (InferenceX ``joules_per_token``)."""
    if tok_s_per_gpu <= 0:
        raise HierroError(f"tokens/s per GPU must be > 0, got {tok_s_per_gpu}")
    return all_in_W_per_gpu / tok_s_per_gpu


def tokens_per_s_per_mw(tok_s_per_gpu: float, all_in_W_per_gpu: float) -> float:
    """Tokens/s per MW of all-in utility power = tps x 1e6 / W per GPU (InferenceX)."""
    if all_in_W_per_gpu <= 0:
        raise HierroError(f"all-in W per GPU must be > 0, got {all_in_W_per_gpu}")
    return tok_s_per_gpu * MEGA / all_in_W_per_gpu


@dataclass(frozen=True)
class TokenEconomics:
    """Cost, energy and power density of the tokens one serving configuration makes."""

    model_id: str
    gpu_id: str
    preset: str
    isl: int
    osl: int
    usd_per_gpu_hour: float
    all_in_W_per_gpu: float
    out_tok_s_per_gpu: float
    in_tok_s_per_gpu: float
    input_cost_share: float
    """Share of a request's accelerator time spent on its input tokens (the allocation)."""
    usd_per_request: float
    usd_per_mtok_input: float
    usd_per_mtok_output: float
    usd_per_mtok_cached_input: float
    usd_per_mtok_total: float
    """InferenceX total-token variant: the hour over input + output throughput."""
    usd_per_mtok_output_only: float
    """InferenceX output variant: the whole hour charged to output tokens."""
    joules_per_output_token: float
    joules_per_token: float
    output_tok_s_per_mw: float
    tok_s_per_mw: float


def token_economics(e: Estimate, t: TcoBreakdown, *, cached_input_cost_ratio: float | None = None) -> TokenEconomics:
    """Token economics of the estimate ``e`` served on capacity costing ``t``."""
    if e.gpu_id != t.inputs.gpu_id:
        raise HierroError(f"estimate is on {e.gpu_id} but the TCO is for {t.inputs.gpu_id}")
    ratio = cached_input_cost_ratio
    if ratio is None:
        ratio = float(finance().cached_input_cost_ratio.value or 0.0)
    if not 0 <= ratio <= 1:
        raise HierroError(f"cached_input_cost_ratio must be in [0, 1], got {ratio}")
    usd_h = t.usd_per_gpu_hour
    out_tps = e.out_tok_s_per_gpu
    in_tps = e.req_s * e.isl / e.devices
    usd_per_request = usd_h * e.devices / HOUR / e.req_s
    t_in = float(e.prefill_step.time_s)
    t_out = max(e.osl - 1, 1) * float(e.decode_step.time_s) * e.pp / max(e.batch, 1e-9)
    share = t_in / (t_in + t_out)
    c_in = usd_per_request * share / e.isl * MEGA
    c_out = usd_per_request * (1.0 - share) / e.osl * MEGA
    W = t.all_in_W
    return TokenEconomics(
        model_id=e.model_id,
        gpu_id=e.gpu_id,
        preset=t.inputs.preset,
        isl=e.isl,
        osl=e.osl,
        usd_per_gpu_hour=usd_h,
        all_in_W_per_gpu=W,
        out_tok_s_per_gpu=out_tps,
        in_tok_s_per_gpu=in_tps,
        input_cost_share=share,
        usd_per_request=usd_per_request,
        usd_per_mtok_input=c_in,
        usd_per_mtok_output=c_out,
        usd_per_mtok_cached_input=c_in * ratio,
        usd_per_mtok_total=usd_per_mtok(usd_h, out_tps + in_tps),
        usd_per_mtok_output_only=usd_per_mtok(usd_h, out_tps),
        joules_per_output_token=joules_per_token(W, out_tps),
        joules_per_token=joules_per_token(W, out_tps + in_tps),
        output_tok_s_per_mw=tokens_per_s_per_mw(out_tps, W),
        tok_s_per_mw=tokens_per_s_per_mw(out_tps + in_tps, W),
    )


@dataclass(frozen=True)
class Margin:
    """Gross margin of selling the request shape at a public API price."""

    api: ApiPrice
    cached_fraction: float
    revenue_usd_per_request: float
    cost_usd_per_request: float
    input_margin: float
    output_margin: float

    @property
    def margin(self) -> float:
        """(revenue - cost) / revenue per request."""
        return 1.0 - self.cost_usd_per_request / self.revenue_usd_per_request


def margin_vs(econ: TokenEconomics, api: ApiPrice | str, *, cached_fraction: float = 0.0) -> Margin:
    """Margin of ``econ``'s request shape sold at ``api``'s dated list price (a catalog model name
    or an :class:`ApiPrice`); ``cached_fraction`` of input tokens are cache hits."""
    return margin_at(api, econ.isl, econ.osl, econ.usd_per_mtok_input, econ.usd_per_mtok_output,
                     usd_per_mtok_cached_input=econ.usd_per_mtok_cached_input, cached_fraction=cached_fraction)


def margin_at(
    api: ApiPrice | str,
    isl: int,
    osl: int,
    usd_per_mtok_input: float,
    usd_per_mtok_output: float,
    *,
    usd_per_mtok_cached_input: float | None = None,
    cached_fraction: float = 0.0,
) -> Margin:
    """Margin of a request of ``isl`` input and ``osl`` output tokens costing the given $/Mtok,
    sold at ``api``'s dated list price::

        revenue = isl x price_in + osl x price_out          (cached inputs at the cached price)
        cost    = isl x cost_in  + osl x cost_out
        margin  = 1 - cost / revenue
    """
    price = api_price(api) if isinstance(api, str) else api
    if not 0 <= cached_fraction <= 1:
        raise HierroError(f"cached_fraction must be in [0, 1], got {cached_fraction}")
    if price.input_usd_per_mtok <= 0 or price.output_usd_per_mtok <= 0:
        raise HierroError(f"API price of {price.model} must be > 0 to compute a margin")
    if isl < 1 or osl < 1:
        raise HierroError(f"a request needs >= 1 input and output token, got {isl}/{osl}")
    if usd_per_mtok_input < 0 or usd_per_mtok_output < 0:
        raise HierroError("cost per Mtok must be >= 0")
    cached_price = price.cached_input_usd_per_mtok
    if cached_price is None:
        cached_price = price.input_usd_per_mtok
    cached_cost = usd_per_mtok_input if usd_per_mtok_cached_input is None else usd_per_mtok_cached_input
    f = cached_fraction
    in_price = (1 - f) * price.input_usd_per_mtok + f * cached_price
    in_cost = (1 - f) * usd_per_mtok_input + f * cached_cost
    revenue = (isl * in_price + osl * price.output_usd_per_mtok) / MEGA
    cost = (isl * in_cost + osl * usd_per_mtok_output) / MEGA
    return Margin(
        api=price,
        cached_fraction=f,
        revenue_usd_per_request=revenue,
        cost_usd_per_request=cost,
        input_margin=1.0 - in_cost / in_price,
        output_margin=1.0 - usd_per_mtok_output / price.output_usd_per_mtok,
    )
