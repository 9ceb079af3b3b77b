"""Capacity: utility power -> accelerators -> nodes -> racks -> sites, and the reverse.

Power is all-in provisioned utility power, as SemiAnalysis counts it (GPUs, CPUs, network and
facility overhead; METHODS.md §1 and §9)::

    accelerators = utility W / all-in W per accelerator    (all-in W = IT W x PUE)
    nodes        = ceil(accelerators / accelerators per node)
    racks        = ceil(accelerators / accelerators per rack)
    sites        = ceil(utility W / W per site)

Sanity anchor: Stargate Abilene, 1.2 GW for ~400k GB200, is ~3 kW per GPU all in (sites.yaml).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from hierro.econ.defaults import hardware_entries, site, sites
from hierro.econ.finance import HOURS_PER_YEAR
from hierro.econ.tco import TcoBreakdown
from hierro.errors import HierroError
from hierro.specs import get_accelerator, get_system

__all__ = [
    "Capacity",
    "SiteCheck",
    "capacity_from_accelerators",
    "capacity_from_power",
    "check_site",
    "default_site_W",
    "gpus_per_rack",
]

_NODES_PER_RACK = 4
"""Fallback nodes per rack when neither hardware.yaml nor a rack-scale system says (estimate)."""


@dataclass(frozen=True)
class Capacity:
    """A fleet of one accelerator and the power, nodes, racks and sites it takes."""

    gpu_id: str
    accelerators: int
    nodes: int
    racks: int
    sites: int
    utility_W: float
    it_W: float
    all_in_W_per_gpu: float
    site_W: float
    gpu_hours_per_year: float
    """Busy accelerator-hours per year at the TCO's utilisation."""
    build_time_years: float


def gpus_per_rack(gpu_id: str) -> int:
    """Accelerators per rack: hardware.yaml, else 4 nodes of the catalog system (estimate)."""
    entry = hardware_entries().get(gpu_id)
    if entry is not None and entry.gpus_per_rack is not None and entry.gpus_per_rack.value:
        return int(entry.gpus_per_rack.value)
    system = get_system(get_accelerator(gpu_id).system_id)
    return system.accelerators_per_node * _NODES_PER_RACK


def default_site_W() -> float:
    """The median utility power of the campuses in sites.yaml (about 1.1 GW)."""
    powers = [s.power_W for s in sites() if s.power_W is not None]
    return float(statistics.median(powers))


def capacity_from_accelerators(n: float, t: TcoBreakdown, *, site_W: float | None = None) -> Capacity:
    """The power, nodes, racks and sites of ``n`` accelerators priced by ``t``."""
    if n < 0 or not math.isfinite(n):
        raise HierroError(f"accelerators must be a finite number >= 0, got {n}")
    x = t.inputs
    per_site = default_site_W() if site_W is None else site_W
    if per_site <= 0:
        raise HierroError(f"site power must be > 0 W, got {per_site}")
    count = math.floor(n)
    per_node = get_system(get_accelerator(x.gpu_id).system_id).accelerators_per_node
    utility = count * t.all_in_W
    return Capacity(
        gpu_id=x.gpu_id,
        accelerators=count,
        nodes=math.ceil(count / per_node),
        racks=math.ceil(count / gpus_per_rack(x.gpu_id)),
        sites=math.ceil(utility / per_site),
        utility_W=utility,
        it_W=count * x.it_W,
        all_in_W_per_gpu=t.all_in_W,
        site_W=per_site,
        gpu_hours_per_year=count * HOURS_PER_YEAR * x.utilisation,
        build_time_years=x.build_time_years,
    )


def capacity_from_power(utility_W: float, t: TcoBreakdown, *, site_W: float | None = None) -> Capacity:
    """The accelerators ``utility_W`` of all-in power feeds, priced by ``t``."""
    if utility_W < 0 or not math.isfinite(utility_W):
        raise HierroError(f"power must be a finite number >= 0 W, got {utility_W}")
    return capacity_from_accelerators(utility_W / t.all_in_W, t, site_W=site_W)


@dataclass(frozen=True)
class SiteCheck:
    """A campus's reported accelerators against what its power feeds under the TCO's W per GPU."""

    site_id: str
    reported_accelerators: float
    modelled: Capacity
    reported_W_per_gpu: float

    @property
    def ratio(self) -> float:
        """Modelled / reported accelerators (above 1: our W per GPU is lower than the site's)."""
        return self.modelled.accelerators / self.reported_accelerators


def check_site(site_id: str, t: TcoBreakdown) -> SiteCheck:
    """Compare a campus's reported count with the count its power feeds at ``t.all_in_W``."""
    s = site(site_id)
    if s.power_W is None or s.accelerators is None or s.W_per_accelerator is None:
        raise HierroError(f"site {site_id!r} lacks power or accelerator counts in sites.yaml")
    return SiteCheck(
        site_id=s.id,
        reported_accelerators=s.accelerators,
        modelled=capacity_from_power(s.power_W, t, site_W=s.power_W),
        reported_W_per_gpu=s.W_per_accelerator,
    )
