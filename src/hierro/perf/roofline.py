"""Roofline time of an op, with calibrated efficiencies, and alpha-beta collectives.

Compute ops (Williams, Waterman and Patterson, "Roofline", CACM 2009):

    t_c = F / (P_dtype · e_c),   t_m = B / (BW_hbm · e_m)
    t = max(t_c, t_m) + x · min(t_c, t_m) + n · t_launch

The roofline is a bound: it assumes the loads of one tile hide entirely behind the math of the
previous one. A kernel near the ridge point reaches neither roof (its pipeline drains between
waves, the prologue's loads and the epilogue's stores are not overlapped), so a share ``x`` of
the shorter time shows (0 <= x <= 1; 0 is the plain roofline, 1 no overlap at all). It matters
for the shapes between the roofs (decode batches of tens to hundreds of sequences, expert GEMMs
with a few hundred tokens each) and vanishes far on either side of the ridge.

Collectives (Hockney's alpha-beta model; ring algorithms as in Thakur, Rabenseifner and Gropp,
IJHPCA 2005): an all-reduce of M bytes over g devices moves 2(g-1)/g · M per device,

    t = n · alpha + 2(g-1)/g · M / (BW_link · e_link)

all-to-all traffic is given already as the bytes that leave each device, and a point-to-point
send moves M once. The link is the scale-up fabric unless the group crosses the domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hierro.perf.efficiency import Calibration
from hierro.perf.ops import Num, Op
from hierro.specs import Accelerator

__all__ = ["Bound", "OpCost", "op_time"]

Bound = Literal["compute", "memory", "comm", "latency"]


@dataclass(frozen=True, slots=True)
class OpCost:
    """An op's cost on one device: its work and the time the roofline gives it."""

    name: str
    op_class: str
    flops: Num
    bytes: Num
    comm_bytes: Num
    time_s: Num
    compute_s: Num
    memory_s: Num
    comm_s: Num
    exposed: float = 0.0
    """Share of the shorter of ``compute_s`` and ``memory_s`` in ``time_s`` (see the module
    docstring)."""

    def bound(self) -> Bound:
        """What limits the op (for scalar costs)."""
        c, m, k = float(np.max(self.compute_s)), float(np.max(self.memory_s)), float(np.max(self.comm_s))
        top = max(c, m, k)
        if top <= 0.0:
            return "latency"
        if top == k:
            return "comm"
        return "compute" if c >= m else "memory"


def op_time(op: Op, accel: Accelerator, calib: Calibration, framework: str) -> OpCost:
    """Time of one op on ``accel`` with the efficiencies of ``calib`` for ``framework``."""
    fam = accel.family
    if op.op_class == "host":
        # time per sequence, additive like a collective (no roofline); a calibration written
        # before this term existed has no entry, which means no such time
        per_row = calib.latency_or(fam, framework, "host", op.dtype, 0.0)
        host = np.asarray(op.rows, dtype=np.float64) * per_row
        zero = host * 0.0
        return OpCost(op.name, op.op_class, op.flops, op.bytes, op.comm_bytes, host, zero, zero, host)
    latency = calib.latency(fam, framework, op.op_class, op.dtype)
    if op.op_class in ("allreduce", "alltoall", "p2p"):
        link = accel.scale_out_bw_Bps if op.scale_out else accel.scale_up_bw_Bps
        link = link or accel.scale_out_bw_Bps or 1e9
        eff = calib.memory(fam, framework, op.op_class, op.dtype)
        g = max(op.group, 2)
        factor = 2.0 * (g - 1) / g if op.op_class == "allreduce" else 1.0
        comm = factor * op.comm_bytes / (link * eff)
        nothing = comm * 0.0
        launched = np.where(np.asarray(op.comm_bytes) > 0, op.count * latency, 0.0)
        return OpCost(op.name, op.op_class, op.flops, op.bytes, op.comm_bytes,
                      comm + launched, nothing, nothing, comm)
    e_c = calib.compute(fam, framework, op.op_class, op.dtype)
    e_m = calib.memory(fam, framework, op.op_class, op.dtype)
    compute = op.flops / (accel.flops(op.dtype) * e_c)
    memory = op.bytes / (accel.hbm_bw_Bps * e_m)
    # a kernel that has no work this step is not launched
    launched = np.where(np.asarray(op.flops) + np.asarray(op.bytes) > 0, op.count * latency, 0.0)
    exposed = calib.exposed(fam, framework, op.op_class, op.dtype)
    t = np.maximum(compute, memory) + exposed * np.minimum(compute, memory) + launched
    return OpCost(op.name, op.op_class, op.flops, op.bytes, op.comm_bytes, t, compute, memory, compute * 0.0,
                  exposed)
