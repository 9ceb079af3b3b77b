"""``hierro tco``: the build-up of $/GPU-hour, from first principles or a rented tier."""

from __future__ import annotations

from typing import Annotated

import typer

from hierro.cli._shared import GpuOpt, JsonOpt, emit_json, out
from hierro.econ import tco, tco_inputs
from hierro.report.econ import tco_dict, tco_tables

__all__ = ["tco_cmd"]


def tco_cmd(
    gpu: GpuOpt = "h100-sxm",
    preset: Annotated[
        str | None,
        typer.Option(help="neocloud-owned (default), hyperscaler-owned, rental-3yr, on-demand, "
                    "or semianalysis-hyperscaler / semianalysis-neocloud (their stated assumptions)"),
    ] = None,
    power_price: Annotated[float | None, typer.Option(help="electricity price, USD per kWh")] = None,
    utilisation: Annotated[float | None, typer.Option(help="share of hours busy or sold, in (0, 1]")] = None,
    life_years: Annotated[float | None, typer.Option(help="depreciation life of the IT equipment, years")] = None,
    wacc: Annotated[float | None, typer.Option(help="cost of capital per year, e.g. 0.08")] = None,
    pue: Annotated[float | None, typer.Option(help="power usage effectiveness of the facility")] = None,
    price: Annotated[float | None, typer.Option(help="capital cost per accelerator, USD")] = None,
    dc_capex_per_mw: Annotated[
        float | None, typer.Option(help="data-centre shell + MEP capex, USD per MW of critical IT")
    ] = None,
    rental_price: Annotated[
        float | None, typer.Option(help="rental price, USD per GPU-hour (rented presets)")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="on-demand preset: one provider's list price instead of the median")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """$/GPU-hour built up from chip, server, network, data centre, power and capital, with the
    source of every default."""
    given = {
        "power_usd_per_kwh": power_price,
        "utilisation": utilisation,
        "it_life_years": life_years,
        "wacc": wacc,
        "pue": pue,
        "price_usd": price,
        "dc_capex_usd_per_mw": dc_capex_per_mw,
        "rental_usd_per_gpu_hour": rental_price,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    b = tco(tco_inputs(gpu, preset, overrides, provider=provider))
    if as_json:
        emit_json(tco_dict(b))
    else:
        out.print(tco_tables(b))
