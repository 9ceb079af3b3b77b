"""Total cost of ownership per accelerator-hour, from first principles or from a rented tier.

Owned capacity (METHODS.md §2 and §9; Epoch AI's amortised-capex method, Cottier et al.
arXiv:2405.21015, with an annuity in place of straight-line amortisation)::

    server   = price                       (server-level price per accelerator)
             = price x server_multiplier   (chip-level price; Epoch 1.64x)
    IT capex = server / (1 - network_share - storage_share)   (Epoch: interconnect = 19% of cluster cost)
    facility = IT W x dc_capex_usd_per_mw / 1e6                (shell + MEP per MW of critical IT)
    per year = IT capex x CRF(r, n_IT) + facility x CRF(r, n_DC) + om_share x (IT capex + facility)
    power    = IT W x load_factor x PUE x $/kWh                (per busy hour)
               (presets semianalysis-*: PUE = SemiAnalysis' all-in utility W per GPU / IT W)
    $/GPU-h  = per year / 8766 h / utilisation + power

Rented capacity: $/GPU-h = rental price / utilisation (power and facility are in the price).
Every input is a sourced default (``econ/data``) that the caller may override.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Literal

from hierro.catalog import accelerator_files
from hierro.econ.defaults import ALL_IN_PUE, finance, hardware_entries, presets, tier
from hierro.econ.finance import HOURS_PER_YEAR, capital_recovery_factor
from hierro.econ.schema import OwnedPreset
from hierro.errors import HierroError, UnknownIdError
from hierro.specs import get_accelerator, get_system
from hierro.units import KILO, MEGA

__all__ = [
    "DEFAULT_PRESET",
    "TcoBreakdown",
    "TcoInputs",
    "preset_names",
    "tco",
    "tco_for",
    "tco_inputs",
    "with_overrides",
]

DEFAULT_PRESET = "neocloud-owned"
"""The preset of ``preset=None``: the first-principles defaults (grid power, Epoch's PUE, a neocloud's
cost of debt, SemiAnalysis' 4-year life)."""

_OVERRIDE = "override"


@dataclass(frozen=True)
class TcoInputs:
    """Every assumption of one TCO, SI units or named units; ``sources`` names where each came from."""

    gpu_id: str
    preset: str
    kind: Literal["owned", "rented"]
    price_usd: float
    """Capital cost per accelerator, at ``price_basis``."""
    price_basis: Literal["chip", "server"]
    server_multiplier: float
    network_share: float
    storage_share: float
    it_W: float
    """Critical-IT power provisioned per accelerator (its share of the server)."""
    dc_capex_usd_per_mw: float
    pue: float
    power_usd_per_kwh: float
    power_load_factor: float
    it_life_years: float
    dc_life_years: float
    wacc: float
    om_share_per_year: float
    utilisation: float
    rental_usd_per_gpu_hour: float | None = None
    build_time_years: float = 0.0
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_inputs(self)

    def source(self, name: str) -> str:
        return self.sources.get(name, "")


def _check_inputs(x: TcoInputs) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise HierroError(f"TCO input {what} (gpu {x.gpu_id}, preset {x.preset})")

    need(x.price_usd > 0, f"price_usd must be > 0, got {x.price_usd}")
    need(x.server_multiplier >= 1, f"server_multiplier must be >= 1, got {x.server_multiplier}")
    for name in ("network_share", "storage_share"):
        v = getattr(x, name)
        need(0 <= v < 1, f"{name} must be in [0, 1), got {v}")
    need(x.network_share + x.storage_share < 1, "network_share + storage_share must be < 1")
    need(x.it_W > 0, f"it_W must be > 0, got {x.it_W}")
    need(x.dc_capex_usd_per_mw >= 0, f"dc_capex_usd_per_mw must be >= 0, got {x.dc_capex_usd_per_mw}")
    need(1 <= x.pue <= 3, f"pue must be in [1, 3], got {x.pue}")
    need(x.power_usd_per_kwh >= 0, f"power_usd_per_kwh must be >= 0, got {x.power_usd_per_kwh}")
    need(0 < x.power_load_factor <= 1, f"power_load_factor must be in (0, 1], got {x.power_load_factor}")
    need(x.it_life_years > 0, f"it_life_years must be > 0, got {x.it_life_years}")
    need(x.dc_life_years > 0, f"dc_life_years must be > 0, got {x.dc_life_years}")
    need(0 <= x.wacc < 1, f"wacc must be in [0, 1), got {x.wacc}")
    need(x.om_share_per_year >= 0, f"om_share_per_year must be >= 0, got {x.om_share_per_year}")
    need(0 < x.utilisation <= 1, f"utilisation must be in (0, 1], got {x.utilisation}")
    need(x.build_time_years >= 0, f"build_time_years must be >= 0, got {x.build_time_years}")
    if x.kind == "rented":
        r = x.rental_usd_per_gpu_hour
        need(r is not None and r > 0, f"rental_usd_per_gpu_hour must be > 0, got {r}")


@dataclass(frozen=True)
class TcoBreakdown:
    """$/GPU-hour per busy hour (i.e. already divided by utilisation), by component."""

    inputs: TcoInputs
    server: float
    network: float
    storage: float
    facility: float
    om: float
    power: float
    rental: float
    capex_usd: float
    """Owned: IT capex plus facility capex per accelerator; rented: 0."""
    it_capex_usd: float
    facility_capex_usd: float
    all_in_W: float
    """Provisioned utility power per accelerator (IT W x PUE), as SemiAnalysis' all-in kW."""
    tier_usd_per_gpu_hour: float | None
    """SemiAnalysis' published value of the same tier for this accelerator, if any."""

    @property
    def usd_per_gpu_hour(self) -> float:
        return self.server + self.network + self.storage + self.facility + self.om + self.power + self.rental

    def components(self) -> tuple[tuple[str, float], ...]:
        """(name, $/GPU-hour) of the non-zero components, in build-up order."""
        items = (
            ("server", self.server), ("network", self.network), ("storage", self.storage),
            ("facility", self.facility), ("o&m", self.om), ("power", self.power),
            ("rental", self.rental),
        )
        return tuple((n, v) for n, v in items if v != 0.0)


def preset_names() -> list[str]:
    return list(presets())


def _it_W(gpu_id: str) -> tuple[float, str]:
    """Critical-IT W per accelerator: econ override, else node power / accelerators per node,
    else TDP x Epoch's chip-to-server power multiplier."""
    entry = hardware_entries().get(gpu_id)
    if entry is not None and entry.it_W is not None and entry.it_W.value is not None:
        return entry.it_W.value, entry.it_W.source
    acc = get_accelerator(gpu_id)
    system = get_system(acc.system_id)
    if system.node_power_W is not None:
        return system.node_power_W / system.accelerators_per_node, (
            f"catalog system {system.id} node_power_W / {system.accelerators_per_node}"
        )
    mult = finance().chip_to_server_power
    fig = mult.get(acc.family, mult["default"])
    if not acc.tdp_W or fig.value is None:
        raise HierroError(f"accelerator {gpu_id!r} has no node power or TDP in the catalog; pass it_W")
    return acc.tdp_W * fig.value, f"TDP {acc.tdp_W:g} W x {fig.value:g} ({fig.source})"


def _price(gpu_id: str) -> tuple[float | None, Literal["chip", "server"], str]:
    entry = hardware_entries().get(gpu_id)
    if entry is not None and entry.price_usd.value is not None:
        return entry.price_usd.value, entry.basis, entry.price_usd.source
    acc = accelerator_files()[gpu_id]
    if acc.price_usd is None or acc.price_usd.value is None:
        return None, "chip", ""
    return acc.price_usd.value, "chip", f"catalog {gpu_id} price_usd: {acc.price_usd.source}"


def _on_demand(gpu_id: str, provider: str | None) -> tuple[float, str]:
    """Median on-demand list price in the catalog (or one provider's)."""
    listed = [
        p for p in accelerator_files()[gpu_id].cloud_prices
        if p.tier == "on_demand" and (provider is None or p.provider == provider)
    ]
    if not listed:
        who = f" from {provider!r}" if provider else ""
        raise HierroError(f"no on-demand price{who} for {gpu_id!r} in the catalog; pass rental_usd_per_gpu_hour")
    price = statistics.median(p.usd_per_hour for p in listed)
    names = ", ".join(f"{p.provider} ${p.usd_per_hour:g} ({p.as_of})" for p in listed)
    return price, f"median of catalog on-demand prices: {names}"


def tco_inputs(
    gpu: str = "h100-sxm",
    preset: str | None = None,
    overrides: Mapping[str, float] | None = None,
    *,
    provider: str | None = None,
) -> TcoInputs:
    """The sourced default inputs of ``preset`` for accelerator ``gpu``, with ``overrides``
    (field names of :class:`TcoInputs`) replacing defaults. ``provider`` picks one provider's
    price for the on-demand preset."""
    overrides = dict(overrides or {})
    gpu_id = gpu.lower()
    get_accelerator(gpu_id)  # unknown id -> UnknownIdError naming the closest
    name = preset or DEFAULT_PRESET
    table = presets()
    p = table.get(name)
    if p is None:
        raise UnknownIdError("preset", name, table)
    fin = finance()
    src: dict[str, str] = {}

    def fig(key: str, value: float | None, source: str) -> float:
        src[key] = source
        return float(value if value is not None else 0.0)

    owned = p if isinstance(p, OwnedPreset) else presets()[DEFAULT_PRESET]
    assert isinstance(owned, OwnedPreset)
    power = fin.power_usd_per_kwh[owned.power_price]
    wacc, life = fin.cost_of_capital[owned.wacc], fin.depreciation_life_years[owned.life]
    om = owned.om_share_per_year or fin.om_share_per_year
    price, basis, price_src = _price(gpu_id)
    if price is None and "price_usd" not in overrides and isinstance(p, OwnedPreset):
        raise HierroError(f"no purchase price for {gpu_id!r} in the catalog; pass price_usd (USD per accelerator)")
    it_W, it_src = _it_W(gpu_id)
    it_W = float(overrides.get("it_W", it_W))
    if owned.pue == ALL_IN_PUE:
        t_all = tier(gpu_id)
        if t_all is None:
            raise HierroError(f"no SemiAnalysis all-in power for {gpu_id!r} (tiers.yaml); pass pue or use another preset")
        pue_value: float | None = max(1.0, t_all.all_in_W_per_gpu / it_W)
        pue_src = (f"SemiAnalysis all-in utility {t_all.all_in_W_per_gpu:g} W per GPU (tiers.yaml) / IT "
                   f"{it_W:g} W, floored at 1")
    else:
        pue_value, pue_src = fin.pue[owned.pue].value, fin.pue[owned.pue].source
    src["price_basis"] = "econ/data/hardware.yaml" if gpu_id in hardware_entries() else "catalog price taken as chip-level"
    rental: float | None = None
    if not isinstance(p, OwnedPreset):
        if p.price == "rental_3yr":
            t = tier(gpu_id)
            if t is None:
                raise HierroError(f"no SemiAnalysis 3-year rental tier for {gpu_id!r}; pass rental_usd_per_gpu_hour")
            rental = fig("rental_usd_per_gpu_hour", t.rental_3yr_usd_per_gpu_hour, "SemiAnalysis 3-yr rental tier (tiers.yaml)")
        else:
            value, where = _on_demand(gpu_id, provider)
            rental = fig("rental_usd_per_gpu_hour", value, where)
    x = TcoInputs(
        gpu_id=gpu_id,
        preset=name,
        kind=p.kind,
        price_usd=fig("price_usd", price if price is not None else 1.0, price_src or "none (rented)"),
        price_basis=basis,
        server_multiplier=fig("server_multiplier", fin.server_multiplier.value, fin.server_multiplier.source),
        network_share=fig("network_share", fin.network_share.value, fin.network_share.source),
        storage_share=fig("storage_share", fin.storage_share.value, fin.storage_share.source),
        it_W=fig("it_W", it_W, it_src),
        dc_capex_usd_per_mw=fig("dc_capex_usd_per_mw", fin.dc_capex_usd_per_mw.value, fin.dc_capex_usd_per_mw.source),
        pue=fig("pue", pue_value, pue_src),
        power_usd_per_kwh=fig("power_usd_per_kwh", power.value, power.source),
        power_load_factor=fig("power_load_factor", fin.power_load_factor.value, fin.power_load_factor.source),
        it_life_years=fig("it_life_years", life.value, life.source),
        dc_life_years=fig("dc_life_years", fin.dc_life_years.value, fin.dc_life_years.source),
        wacc=fig("wacc", wacc.value, wacc.source),
        om_share_per_year=fig("om_share_per_year", om.value, om.source),
        utilisation=fig("utilisation", fin.utilisation.value, fin.utilisation.source),
        rental_usd_per_gpu_hour=rental,
        build_time_years=fig(
            "build_time_years", fin.build_time_years.value if p.kind == "owned" else 0.0,
            fin.build_time_years.source if p.kind == "owned" else "rented: capacity exists",
        ),
    )
    return with_overrides(x, overrides, sources=src)


def with_overrides(
    x: TcoInputs, overrides: Mapping[str, float], *, sources: Mapping[str, str] | None = None
) -> TcoInputs:
    """``x`` with some inputs replaced; their source becomes ``override``."""
    names = {f.name for f in fields(TcoInputs)} - {"gpu_id", "preset", "kind", "price_basis", "sources"}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise HierroError(f"unknown TCO input {unknown[0]!r}; known: {', '.join(sorted(names))}")
    src = dict(sources if sources is not None else x.sources)
    src.update(dict.fromkeys(overrides, _OVERRIDE))
    return replace(x, **overrides, sources=MappingProxyType(src))  # type: ignore[arg-type]


def tco(x: TcoInputs) -> TcoBreakdown:
    """The $/GPU-hour build-up of ``x`` (see the module docstring for the formulas)."""
    t = tier(x.gpu_id)
    if x.kind == "rented":
        assert x.rental_usd_per_gpu_hour is not None
        ref = t.rental_3yr_usd_per_gpu_hour if (t and x.preset == "rental-3yr") else None
        all_in = t.all_in_W_per_gpu if t else x.it_W * x.pue
        return TcoBreakdown(
            inputs=x, server=0.0, network=0.0, storage=0.0, facility=0.0, om=0.0, power=0.0,
            rental=x.rental_usd_per_gpu_hour / x.utilisation, capex_usd=0.0, it_capex_usd=0.0,
            facility_capex_usd=0.0, all_in_W=all_in, tier_usd_per_gpu_hour=ref,
        )
    server = x.price_usd * (x.server_multiplier if x.price_basis == "chip" else 1.0)
    it_capex = server / (1.0 - x.network_share - x.storage_share)
    facility = x.it_W * x.dc_capex_usd_per_mw / MEGA
    crf_it = capital_recovery_factor(x.wacc, x.it_life_years)
    crf_dc = capital_recovery_factor(x.wacc, x.dc_life_years)
    per_busy_hour = 1.0 / (HOURS_PER_YEAR * x.utilisation)  # a year's charge spread over busy hours
    # energy per busy hour: W x load x PUE x 1 h, priced per kWh
    power = x.it_W * x.power_load_factor * x.pue * x.power_usd_per_kwh / KILO
    ref = None
    p = presets().get(x.preset)
    if t is not None and isinstance(p, OwnedPreset) and p.tier is not None:
        ref = {"hyperscaler": t.hyperscaler_owned_usd_per_gpu_hour,
               "neocloud": t.neocloud_owned_usd_per_gpu_hour}[p.tier]
    return TcoBreakdown(
        inputs=x,
        server=server * crf_it * per_busy_hour,
        network=it_capex * x.network_share * crf_it * per_busy_hour,
        storage=it_capex * x.storage_share * crf_it * per_busy_hour,
        facility=facility * crf_dc * per_busy_hour,
        om=x.om_share_per_year * (it_capex + facility) * per_busy_hour,
        power=power,
        rental=0.0,
        capex_usd=it_capex + facility,
        it_capex_usd=it_capex,
        facility_capex_usd=facility,
        all_in_W=x.it_W * x.pue,
        tier_usd_per_gpu_hour=ref,
    )


def tco_for(
    gpu: str = "h100-sxm",
    preset: str | None = None,
    overrides: Mapping[str, float] | None = None,
    *,
    provider: str | None = None,
) -> TcoBreakdown:
    """Shorthand: ``tco(tco_inputs(gpu, preset, overrides, provider=provider))``."""
    return tco(tco_inputs(gpu, preset, overrides, provider=provider))
