"""Power, energy and rental cost of a training run, with documented defaults.

Power (Cottier et al. 2024, arXiv:2405.21015, Epoch AI's cost_analysis_standalone.py):

    P_server per GPU = TDP_chip · k_server,  k_server = server TDP / (GPUs per server · chip TDP)
    energy = G · hours · P_server · u · PUE,      peak power = G · P_server · PUE

with k_server from the system catalog when it lists the node's power (DGX H100: 10.2 kW / 8 /
700 W = 1.82), else Epoch's defaults (A100 2.03, other GPUs 1.8, TPU 1.56); u = 0.75 of server
TDP drawn on average during training on GPUs (0.43 on TPUs), and PUE 1.25 (Epoch: 1.1 for
hyperscalers' own data centres, 1.25 otherwise).

Price: dollars per GPU-hour are an input; without one, the median of the accelerator's catalog
cloud prices (every provider and tier listed) is used and the output says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from hierro.catalog import accelerator_files
from hierro.econ import tco_for
from hierro.errors import HierroError
from hierro.specs import Accelerator, get_system

__all__ = [
    "DEFAULT_PUE",
    "Power",
    "default_price",
    "server_power",
]

DEFAULT_PUE = 1.25
_K_SERVER = {"ampere": 2.03, "tpu": 1.56}
_K_SERVER_OTHER = 1.8
_UTILISATION = {"tpu": 0.43}
_UTILISATION_GPU = 0.75


@dataclass(frozen=True, slots=True)
class Power:
    """Electrical power of one GPU's share of its server."""

    server_W_per_gpu: float
    utilisation: float
    source: str


def server_power(acc: Accelerator) -> Power:
    """Server power per GPU at full load, and the average share drawn in training."""
    util = _UTILISATION.get(acc.family, _UTILISATION_GPU)
    try:
        sys_ = get_system(acc.system_id)
    except HierroError:
        sys_ = None
    if sys_ is not None and sys_.node_power_W and sys_.accelerators_per_node:
        w = sys_.node_power_W / sys_.accelerators_per_node
        return Power(w, util, f"{sys_.id} node power {sys_.node_power_W:,.0f} W / {sys_.accelerators_per_node}")
    k = _K_SERVER.get(acc.family, _K_SERVER_OTHER)
    return Power(acc.tdp_W * k, util, f"TDP {acc.tdp_W:,.0f} W x {k} (Epoch chip-to-server multiplier)")


def default_price(acc: Accelerator) -> tuple[float, str]:
    """$/GPU-hour of owning ``acc`` at neocloud terms (:func:`hierro.econ.tco_for`, first
    principles from the econ defaults); falls back to the median catalog cloud price."""
    try:
        t = tco_for(acc.id)
        return t.usd_per_gpu_hour, f"TCO of an owned {acc.id} at the econ defaults (`hierro tco --gpu {acc.id}`)"
    except HierroError:
        pass
    f = accelerator_files().get(acc.id)
    prices = [p.usd_per_hour for p in f.cloud_prices] if f is not None else []
    if not prices:
        raise HierroError(f"no price for {acc.id} in the catalog or econ defaults; pass --usd-per-gpu-hour")
    med = statistics.median(prices)
    return med, (f"median of {len(prices)} catalog cloud prices for {acc.id} "
                 f"(${min(prices):.2f}-${max(prices):.2f}/GPU-h, all providers and tiers)")
