"""Fast re-evaluation of :class:`~hierro.accuracy.predictor.EstimatePredictor` under new
efficiencies: the work of every op is computed once, re-pricing it is pure numpy.

The predictor evaluates, for each row, :func:`hierro.perf.estimate_arrays` on a grid of
``G = 48`` candidate running batches ``B_j``. For each candidate it prices two step shapes (the
steady-state iteration and the iteration that carries a new prompt's chunk). Neither shape
depends on the calibration, so here the ops of both shapes are built once per *instance group*
(rows sharing model, accelerator, plan and framework family; all rows of a group in one
:func:`~hierro.perf.build_ops` call on ``(R, G)`` arrays) and kept as flat arrays of

    A_k  = FLOPs (0 for collectives),         a_k = peak FLOP/s of the op's dtype
    M_k  = HBM bytes, or f·comm bytes,        m_k = HBM bandwidth, or the link bandwidth

with ``f = 2(g-1)/g`` for an all-reduce over ``g`` devices and 1 otherwise. Under efficiency
values ``v`` (a vector of *slots*, one per distinct lookup (attribute, accelerator family,
framework family, op class, dtype) of the calibration) an op costs, exactly as
:func:`hierro.perf.op_time`,

    t_k = max(A_k / (a_k · e_c), M_k / (m_k · e_m)) + [A_k + M_k > 0] · n_k · t_launch

and a stage step costs ``(Σ_k t_k + t_step) · pp`` (ops summed in build order). The root search
of :func:`~hierro.perf.estimate_arrays` is then repeated on those times (see
:func:`_closed_loop`). Predictions agree with the slow predictor to rounding (~1e-15).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hierro.accuracy.measurements import Measurement
from hierro.accuracy.predictor import BENCHMARK_WAVES, EstimatePredictor, row_lengths, row_plan
from hierro.accuracy.validate import Band, RowPrediction, Skip
from hierro.errors import HierroError
from hierro.perf import (
    Calibration,
    StepModel,
    StepShape,
    build_ops,
    estimate_arrays,
    framework_family,
    mixes_prefill,
)
from hierro.perf.efficiency import FRONT_END_BUDGET, kv_of_free_memory
from hierro.perf.estimate import (
    DEFAULT_MAX_BATCHED_TOKENS,
    batch_caps,
    default_max_seqs,
    first_wave,
    iteration_shape,
    prompt_chunks,
    prompt_step,
    steady_shapes,
    unmixed_shapes,
)
from hierro.specs import (
    Accelerator,
    ModelArch,
    Plan,
    check_fits,
    get_accelerator,
    get_model,
    get_system,
    memory_breakdown,
)
from hierro.units import MILLI, to_ms

__all__ = [
    "GRID",
    "FastPredictor",
    "Prepared",
    "RowSet",
    "SlotKey",
    "exact_predictions",
    "prepare",
    "slot_values",
]

F = NDArray[np.float64]
I64 = NDArray[np.int64]

GRID = 48
"""Candidate running-batch sizes per row of the surrogate's root search."""
NSHAPE = 4
"""Step shapes priced per grid point (steady with fewer chunks, chunked prompt, first-wave
prefill, steady with one more chunk)."""

SlotKey = tuple[str, str, str, str, str]
"""``(attr, accelerator family, framework family, op class, dtype)``; attr is ``compute``,
``memory``, ``latency_s``, ``exposed`` (the roofline's unhidden share, :meth:`Calibration.exposed
<hierro.perf.Calibration.exposed>`), ``ttft`` (the front end's fixed time per request), ``ttft_n`` (its
time per request in flight) or ``ttft_l`` (per prompt token; for the three only the framework
family is set),
or ``one`` (the constant 1, for the compute side of collectives)."""

_COMM = ("allreduce", "alltoall", "p2p")
_ONE: SlotKey = ("one", "*", "*", "*", "*")


def slot_value(calib: Calibration, key: SlotKey) -> float:
    """The calibration's value for one lookup."""
    attr, fam, fw, op_class, dtype = key
    if attr == "one":
        return 1.0
    if attr == "compute":
        return calib.compute(fam, fw, op_class, dtype)
    if attr == "memory":
        return calib.memory(fam, fw, op_class, dtype)
    if attr == "exposed":
        return calib.exposed(fam, fw, op_class, dtype)
    if attr == "latency_s":
        if op_class == "host":
            return calib.latency_or(fam, fw, op_class, dtype, 0.0)
        return calib.latency(fam, fw, op_class, dtype)
    if attr == "ttft":
        return calib.front_end(fw).fixed_s
    if attr == "ttft_n":
        return calib.front_end(fw).per_inflight_s
    if attr == "ttft_l":
        return calib.front_end(fw).per_prompt_token_s
    if attr == "ttft_s":
        return calib.front_end(fw).per_step
    if attr == "ttft_sl":
        return calib.front_end(fw).per_step_per_token
    raise ValueError(f"unknown slot attribute {attr!r}")


def slot_values(calib: Calibration, keys: Sequence[SlotKey]) -> F:
    """Vector of :func:`slot_value` for ``keys``."""
    return np.array([slot_value(calib, k) for k in keys], dtype=np.float64)


@dataclass(frozen=True)
class _Group:
    """The ops of one instance group for its R rows, both shapes, all grid points.

    Arrays ``A, M, live`` have shape ``(n_ops, R, 2, GRID)``; per-op arrays have ``(n_ops,)``.
    """

    key: tuple[str, str, Plan, str]
    """``(model id, accelerator id, plan, framework)`` of the instance."""
    rows: tuple[int, ...]
    A: F
    M: F
    live: F
    """Launch units per op and cell: 1 where the op does work (times its count), or, for the
    per-sequence host op, the number of sequences."""
    a: F
    m: F
    count: F
    slot_c: I64
    slot_m: I64
    slot_l: I64
    slot_x: I64


@dataclass(frozen=True)
class Prepared:
    """Calibration-independent precomputation for a list of rows.

    ``rows[i]`` is predictable iff ``skips[i]`` is None. Per-row arrays (length ``len(rows)``,
    meaningless for skipped rows): lengths ``isl, osl`` (rounded as the predictor does),
    ``n`` (concurrency per instance), ``cap`` (the lower of the KV memory's and the engine's
    running-sequence caps), ``pp``, ``replicas``, ``offline``
    and the slots of the step overhead and of the front end's fixed and per-request-in-flight
    times.
    """

    rows: tuple[Measurement, ...]
    skips: tuple[str | None, ...]
    slots: tuple[SlotKey, ...]
    groups: tuple[_Group, ...]
    isl: F
    osl: F
    n: F
    cap: F
    pp: F
    replicas: F
    offline: NDArray[np.bool_]
    mixed: NDArray[np.bool_]
    """Whether the row's engine mixes prompt chunks into decode steps (:func:`hierro.perf.mixes_prefill`)."""
    slot_step: I64
    slot_ttft: I64
    slot_ttft_n: I64
    slot_ttft_l: I64
    slot_ttft_s: I64
    slot_ttft_sl: I64

    def ok_indices(self) -> list[int]:
        """Indices of the predictable rows."""
        return [i for i, s in enumerate(self.skips) if s is None]


class _Slots:
    def __init__(self) -> None:
        self.index: dict[SlotKey, int] = {_ONE: 0}

    def __call__(self, key: SlotKey) -> int:
        return self.index.setdefault(key, len(self.index))


def _shapes(isl: F, osl: F, n: F, cap: F, pp: int,
            mixed: bool = True) -> tuple[StepShape, StepShape, StepShape, StepShape, F]:
    """The four step shapes of the closed-loop search on the ``(R, GRID)`` grid, and ``B``:
    the steady iteration, the iteration carrying a new prompt's chunk (with the steady prefill
    load), (constant along the grid) the full-budget prefill step of a benchmark's first
    wave, and the steady iteration with one more chunk. For an engine that does not mix
    (:func:`hierro.perf.estimate.unmixed_shapes`) the first is the decode step, the last the
    step that prefills one chunk alone, and the prompt's own step decodes nothing.

    As :func:`hierro.perf.estimate.estimate_arrays`: ``gen = max(osl-1, 1)``,
    ``B ∈ b_max · logspace(-3, 0, G)``, steady prefill ``p = B·isl/gen``; a new prompt is cut
    into ``ceil(isl / max(C - B, C/8))`` chunks.
    """
    C = float(DEFAULT_MAX_BATCHED_TOKENS)
    B, gen = _grid(isl, osl, n, cap)
    Ii, G = isl[:, None], gen[:, None]
    ctx = Ii + G / 2.0
    p = B * Ii / G
    zero = np.zeros_like(B)
    chunks = prompt_chunks(Ii, B, C, mixed)
    chunk = np.broadcast_to(Ii / chunks, B.shape)
    shapes = steady_shapes if mixed else unmixed_shapes
    steady, more, _ = shapes(B, p, chunk, np.broadcast_to(ctx, B.shape), pp)
    before = np.broadcast_to(Ii / 2.0 - Ii / chunks / 2.0, B.shape) * (chunks > 1)
    chunked = prompt_step(Ii, B, p, chunk, before, np.broadcast_to(ctx, B.shape), pp, mixed)
    per_step = np.broadcast_to(first_wave(isl, n, cap, C, engine=math.inf)[0][:, None], B.shape)
    full = iteration_shape(zero, per_step, per_step / Ii, zero, zero, pp)
    return steady, chunked, full, more, B


def _steady_time(isl: F, osl: F, n: F, cap: F, T: F, mixed: NDArray[np.bool_]) -> F:
    """The steady iteration time on the grid: its two shapes (``T[:, 0]`` with fewer chunks,
    ``T[:, 3]`` with one more) mixed as :func:`hierro.perf.estimate.steady_shapes` says; for
    the rows of an engine that does not mix, the decode step plus m prefill steps
    (:func:`hierro.perf.estimate.unmixed_shapes`)."""
    C = float(DEFAULT_MAX_BATCHED_TOKENS)
    B, gen = _grid(isl, osl, n, cap)
    Ii, mx = isl[:, None], mixed[:, None]
    m = B * Ii / gen[:, None] / (Ii / prompt_chunks(Ii, B, C, mx))
    frac = m - np.floor(m)
    return np.asarray(np.where(mx, (1.0 - frac) * T[:, 0] + frac * T[:, 3], T[:, 0] + m * T[:, 3]),
                      dtype=np.float64)


def _grid(isl: F, osl: F, n: F, cap: F) -> tuple[F, F]:
    b_max, gen, _ = batch_caps(isl, osl, n, cap, float(DEFAULT_MAX_BATCHED_TOKENS), engine=math.inf)
    frac = np.logspace(-3, 0, GRID)
    return np.maximum(b_max[:, None] * frac[None, :], 1e-3), gen


def _build_group(
    model: ModelArch, accel: Accelerator, plan: Plan, fw: str, rows: list[int],
    isl: F, osl: F, n: F, cap: F, slots: _Slots,
) -> _Group:
    R = len(rows)
    steady, chunked, full, more, _B = _shapes(isl, osl, n, cap, plan.pp, mixes_prefill(fw))
    shapes = (steady, chunked, full, more)
    domain = get_system(accel.system_id).scale_up_domain
    built = [build_ops(model, accel, plan, s, domain=domain) for s in shapes]
    if len({tuple(o.name for o in ops) for ops in built}) != 1:
        raise AssertionError("the step shapes built different op lists")
    ops_s = built[0]
    fam = accel.family
    k = len(ops_s)
    A = np.zeros((k, R, NSHAPE, GRID))
    M = np.zeros((k, R, NSHAPE, GRID))
    live = np.zeros((k, R, NSHAPE, GRID))
    a, m, count = np.ones(k), np.ones(k), np.zeros(k)
    sc, sm_, sl, sx = (np.zeros(k, dtype=np.int64) for _ in range(4))
    for i, os_ in enumerate(ops_s):
        count[i] = os_.count
        sl[i] = slots(("latency_s", fam, fw, os_.op_class, os_.dtype))
        if os_.op_class == "host":
            count[i] = 1.0
        for j, op in enumerate(ops[i] for ops in built):
            if op.op_class == "host":
                live[i, :, j] = np.broadcast_to(np.asarray(op.rows, dtype=np.float64), (R, GRID))
            elif op.op_class in _COMM:
                g = max(op.group, 2)
                factor = 2.0 * (g - 1) / g if op.op_class == "allreduce" else 1.0
                cb = np.broadcast_to(np.asarray(op.comm_bytes, dtype=np.float64), (R, GRID))
                M[i, :, j] = factor * cb
                live[i, :, j] = cb > 0
            else:
                fl = np.broadcast_to(np.asarray(op.flops, dtype=np.float64), (R, GRID))
                by = np.broadcast_to(np.asarray(op.bytes, dtype=np.float64), (R, GRID))
                A[i, :, j] = fl
                M[i, :, j] = by
                live[i, :, j] = fl + by > 0
        if os_.op_class == "host":
            sc[i] = sm_[i] = 0  # no roofline: slot 0 is the constant 1
        elif os_.op_class in _COMM:
            link = accel.scale_out_bw_Bps if os_.scale_out else accel.scale_up_bw_Bps
            m[i] = link or accel.scale_out_bw_Bps or 1e9
            sc[i] = 0
            sm_[i] = slots(("memory", fam, fw, os_.op_class, os_.dtype))
        else:
            a[i] = accel.flops(os_.dtype)
            m[i] = accel.hbm_bw_Bps
            sc[i] = slots(("compute", fam, fw, os_.op_class, os_.dtype))
            sm_[i] = slots(("memory", fam, fw, os_.op_class, os_.dtype))
            sx[i] = slots(("exposed", fam, fw, os_.op_class, os_.dtype))
    # host and collective ops have no compute side (A = 0): their slot 0 multiplies a zero
    return _Group((model.id, accel.id, plan, fw), tuple(rows), A, M, live, a, m, count, sc, sm_, sl, sx)


def prepare(rows: Sequence[Measurement]) -> Prepared:
    """Precompute the ops of every predictable row (skips carry the predictor's reasons)."""
    rows = tuple(rows)
    N = len(rows)
    skips: list[str | None] = [None] * N
    isl, osl, n, cap, pp, rep = (np.ones(N) for _ in range(6))
    offline = np.zeros(N, dtype=bool)
    mixed = np.ones(N, dtype=bool)
    slot_step = np.zeros(N, dtype=np.int64)
    slot_ttft = np.zeros(N, dtype=np.int64)
    slot_ttft_n = np.zeros(N, dtype=np.int64)
    slot_ttft_l = np.zeros(N, dtype=np.int64)
    slot_ttft_s = np.zeros(N, dtype=np.int64)
    slot_ttft_sl = np.zeros(N, dtype=np.int64)
    slots = _Slots()
    buckets: dict[tuple[str, str, Plan, str], list[int]] = {}
    for i, row in enumerate(rows):
        reason = EstimatePredictor.unsupported_reason(row)
        if reason:
            skips[i] = reason
            continue
        lengths = row_lengths(row)
        assert lengths is not None
        x_in, x_out = round(lengths[0]), max(1, round(lengths[1]))
        try:
            accel = get_accelerator(row.hardware)
            model = get_model(row.model)
            plan = row_plan(row)
            plan.check(model)
            replicas = row.replicas or max(1, row.num_gpus // plan.devices)
            if x_in < 1 or x_out < 1:
                raise HierroError(f"isl and osl must be >= 1 token, got isl={x_in}, osl={x_out}")
            mem = memory_breakdown(model, accel, plan, context=x_in + x_out, mem_fraction=0.9,
                                   max_batched_tokens=DEFAULT_MAX_BATCHED_TOKENS,
                                   of_free=kv_of_free_memory(row.framework))
            check_fits(mem, what=f"{model.id} {plan.weight_dtype} on {plan.devices}x {accel.id} ({plan.label()})")
        except HierroError as err:
            skips[i] = f"cannot model: {err}"
            continue
        if row.load_kind == "offline":
            n[i] = mem.max_seqs * 4
            offline[i] = True
        else:
            n[i] = max(1, round((row.load_value or 1) / replicas))
        # the cap folds the KV memory's limit and the engine's (per attention-DP rank)
        isl[i], osl[i], cap[i], pp[i], rep[i] = x_in, x_out, min(mem.max_seqs, default_max_seqs(plan)), plan.pp, replicas
        fw = framework_family(row.framework)
        mixed[i] = mixes_prefill(fw)
        slot_step[i] = slots(("latency_s", accel.family, fw, "overhead", "*"))
        slot_ttft[i] = slots(("ttft", "*", fw, "*", "*"))
        slot_ttft_n[i] = slots(("ttft_n", "*", fw, "*", "*"))
        slot_ttft_l[i] = slots(("ttft_l", "*", fw, "*", "*"))
        slot_ttft_s[i] = slots(("ttft_s", "*", fw, "*", "*"))
        slot_ttft_sl[i] = slots(("ttft_sl", "*", fw, "*", "*"))
        buckets.setdefault((model.id, accel.id, plan, fw), []).append(i)
    groups = []
    for (model_id, accel_id, plan, fw), idx in buckets.items():
        ix = np.array(idx)
        groups.append(_build_group(
            get_model(model_id), get_accelerator(accel_id), plan, fw, idx,
            isl[ix], osl[ix], n[ix], cap[ix], slots,
        ))
    keys = tuple(sorted(slots.index, key=slots.index.__getitem__))
    return Prepared(rows, tuple(skips), keys, tuple(groups), isl, osl, n, cap, pp, rep,
                    offline, mixed, slot_step, slot_ttft, slot_ttft_n, slot_ttft_l,
                    slot_ttft_s, slot_ttft_sl)


@dataclass(frozen=True)
class RowSet:
    """A subset of a :class:`Prepared`'s predictable rows, flattened for one-shot evaluation.

    Flat arrays (one entry per (op, row, shape, grid point), op-major within each group) and
    ``out``: the index of the (row, shape, grid point) each entry adds to, so that
    ``np.bincount(out, t)`` sums a step's ops in build order.
    """

    prep: Prepared
    idx: I64
    """Rows of ``prep`` in this set, in output order."""
    A: F
    M: F
    launch: F
    a: F
    m: F
    slot_c: I64
    slot_m: I64
    slot_l: I64
    slot_x: I64
    out: I64

    @classmethod
    def of(cls, prep: Prepared, rows: Sequence[int] | None = None) -> RowSet:
        """The set of ``rows`` (indices into ``prep.rows``; default all predictable)."""
        want = set(prep.ok_indices() if rows is None else rows)
        bad = [i for i in want if prep.skips[i] is not None]
        if bad:
            raise ValueError(f"rows {bad[:5]} are skipped, not predictable")
        order: list[int] = []
        parts: dict[str, list[NDArray[np.generic]]] = {k: [] for k in
                                                        ("A", "M", "launch", "a", "m", "c", "mm", "l", "x", "out")}
        for g in prep.groups:
            sel = [j for j, r in enumerate(g.rows) if r in want]
            if not sel:
                continue
            base = len(order)
            order.extend(g.rows[j] for j in sel)
            k, R = g.A.shape[0], len(sel)
            sh = (k, R, NSHAPE, GRID)
            parts["A"].append(g.A[:, sel].ravel())
            parts["M"].append(g.M[:, sel].ravel())
            parts["launch"].append((g.live[:, sel] * g.count[:, None, None, None]).ravel())
            for name, arr in (("a", g.a), ("m", g.m)):
                parts[name].append(np.broadcast_to(arr[:, None, None, None], sh).ravel())
            for name, sarr in (("c", g.slot_c), ("mm", g.slot_m), ("l", g.slot_l), ("x", g.slot_x)):
                parts[name].append(np.broadcast_to(sarr[:, None, None, None], sh).ravel())
            cell = (base + np.arange(R))[:, None, None] * (NSHAPE * GRID) + np.arange(NSHAPE * GRID).reshape(1, NSHAPE, GRID)
            parts["out"].append(np.broadcast_to(cell[None], sh).ravel())

        def real(name: str) -> F:
            return np.concatenate(parts[name]).astype(np.float64) if parts[name] else np.zeros(0)

        def index(name: str) -> I64:
            return np.concatenate(parts[name]).astype(np.int64) if parts[name] else np.zeros(0, np.int64)

        return cls(
            prep, np.array(order, dtype=np.int64),
            real("A"), real("M"), real("launch"), real("a"), real("m"),
            index("c"), index("mm"), index("l"), index("x"), index("out"),
        )

    def times(self, v: F) -> F:
        """Step times ``(rows, NSHAPE, GRID)`` (all shapes) under slot values ``v``, per instance
        iteration: ``(Σ_k t_k + t_step) · pp``."""
        compute = self.A / (self.a * v[self.slot_c])
        memory = self.M / (self.m * v[self.slot_m])
        launched = np.where(self.launch > 0, self.launch * v[self.slot_l], 0.0)
        t = np.maximum(compute, memory) + v[self.slot_x] * np.minimum(compute, memory) + launched
        n = len(self.idx)
        step = np.bincount(self.out, weights=t, minlength=n * NSHAPE * GRID).reshape(n, NSHAPE, GRID)
        p = self.prep
        over = v[p.slot_step[self.idx]]
        return np.asarray((step + over[:, None, None]) * p.pp[self.idx][:, None, None], dtype=np.float64)

    def predict(self, v: F) -> dict[str, F]:
        """Per-row metrics (CSV units) under slot values ``v``: the predictor's values."""
        p = self.prep
        ix = self.idx
        T = self.times(v)
        # FrontEnd.delay(n, isl)
        over = v[p.slot_ttft[ix]] + v[p.slot_ttft_n[ix]] * p.n[ix] + v[p.slot_ttft_l[ix]] * p.isl[ix]
        # FrontEnd.steps(isl, C) at the surrogate's budget C
        fe_steps = v[p.slot_ttft_s[ix]] + v[p.slot_ttft_sl[ix]] * p.isl[ix] * (
            FRONT_END_BUDGET / DEFAULT_MAX_BATCHED_TOKENS)
        ttft, tpot, e2e, req_s = _closed_loop(
            p.isl[ix], p.osl[ix], p.n[ix], p.cap[ix],
            _steady_time(p.isl[ix], p.osl[ix], p.n[ix], p.cap[ix], T, p.mixed[ix]),
            T[:, 1], over, fe_steps, p.mixed[ix])
        # a benchmark's first wave queues for the prefill budget (estimate_arrays ``waves``):
        # TTFT += max(t_full·(steps+1)/2 + t_req - TTFT, 0) / waves
        _, steps = first_wave(p.isl[ix], p.n[ix], p.cap[ix], float(DEFAULT_MAX_BATCHED_TOKENS), engine=math.inf)
        first = T[:, 2, 0] * (steps + 1.0) / 2.0 + over + fe_steps * tpot
        extra = np.where(p.offline[ix], 0.0, np.maximum(first - ttft, 0.0) / BENCHMARK_WAVES)
        ttft = ttft + extra
        e2e = e2e + extra
        req_s = p.n[ix] / e2e
        total = req_s * p.osl[ix] * p.replicas[ix]
        gpus = np.array([p.rows[i].num_gpus for i in ix], dtype=np.float64)
        return {
            "out_tok_s": total,
            "out_tok_s_per_gpu": total / gpus,
            "req_s": req_s * p.replicas[ix],
            "ttft_mean_ms": _ms(ttft),
            "ttft_p50_ms": _ms(ttft),
            "tpot_mean_ms": _ms(tpot),
            "tpot_p50_ms": _ms(tpot),
            "e2e_p50_ms": _ms(e2e),
        }


def _ms(seconds: F) -> F:
    return np.asarray(seconds / MILLI, dtype=np.float64)


def _closed_loop(isl: F, osl: F, n: F, cap: F, t: F, t_chunk: F, req_over: F,
                 fe_steps: F, mixed: NDArray[np.bool_]) -> tuple[F, F, F, F]:
    """The root search of :func:`hierro.perf.estimate_arrays` on precomputed step times.

    ``X = B / (gen·t)``; ``ttft_service = t/2 + chunks·t_chunk + t_req + s·t`` (``s`` the front
    end's engine steps); ``f(B) = (n - B)/X -
    ttft_service``; B* is the last grid point with ``f >= 0``, linearly interpolated to the
    sign change; TTFT = max(ttft_service(B*), (n - B*)/X(B*)), TPOT = t(B*),
    E2E = TTFT + gen·TPOT, req/s = n / E2E.
    """
    C = float(DEFAULT_MAX_BATCHED_TOKENS)
    B, gen = _grid(isl, osl, n, cap)
    G = gen[:, None]
    X = B / (G * t)
    chunks = prompt_chunks(isl[:, None], B, C, mixed[:, None])
    ttft_service = 0.5 * t + chunks * t_chunk + req_over[:, None] + fe_steps[:, None] * t
    waiting = (n[:, None] - B) / X
    f = waiting - ttft_service
    ok = f >= 0
    last = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    idx = np.where(ok.any(axis=1), last, 0)
    rows = np.arange(len(n))
    j, k = idx, np.minimum(idx + 1, GRID - 1)
    f0, f1 = f[rows, j], f[rows, k]
    cross = (f0 > 0) & (f1 < 0)
    w = np.where(cross, f0 / np.where(cross, f0 - f1, 1.0), 0.0)
    w = np.where(ok[:, -1], 0.0, w)

    def pick(a: F) -> F:
        return np.asarray(a[rows, j] * (1 - w) + a[rows, k] * w, dtype=np.float64)

    b_sel, t_sel, x_sel = pick(B), pick(t), pick(X)
    ttft = np.maximum(pick(ttft_service), (n - b_sel) / x_sel)
    e2e = ttft + gen * t_sel
    return ttft, t_sel, e2e, n / e2e


_OFFLINE_METRICS = ("out_tok_s", "out_tok_s_per_gpu", "req_s")


def exact_predictions(prep: Prepared, calib: Calibration, rows: Sequence[int]) -> dict[int, dict[str, float]]:
    """The predictor's values for ``rows`` (predictable indices of ``prep``) under ``calib``,
    exactly: one :func:`hierro.perf.estimate_arrays` call per instance group on all its rows
    (elementwise the same arithmetic as the predictor's one call per row)."""
    want = set(rows)
    out: dict[int, dict[str, float]] = {}
    for g in prep.groups:
        sel = [r for r in g.rows if r in want]
        if not sel:
            continue
        model_id, accel_id, plan, fw = g.key
        sm = StepModel(get_model(model_id), get_accelerator(accel_id), plan, framework=fw, calib=calib)
        for part in ([i for i in sel if prep.offline[i]], [i for i in sel if not prep.offline[i]]):
            if part:
                out.update(_exact_part(prep, sm, part))
    return out


def _exact_part(prep: Prepared, sm: StepModel, sel: list[int]) -> dict[int, dict[str, float]]:
    ix = np.array(sel)
    waves = None if prep.offline[sel[0]] else BENCHMARK_WAVES
    e = estimate_arrays(sm, prep.isl[ix], prep.osl[ix], prep.n[ix], max_seqs=prep.cap[ix], waves=waves)
    total = e.out_tok_s * prep.replicas[ix]
    out: dict[int, dict[str, float]] = {}
    if sel:
        for pos, i in enumerate(sel):
            out[i] = {
                "out_tok_s": float(total[pos]),
                "out_tok_s_per_gpu": float(total[pos]) / prep.rows[i].num_gpus,
                "req_s": float(e.req_s[pos] * prep.replicas[i]),
                "ttft_mean_ms": to_ms(float(e.ttft_s[pos])),
                "ttft_p50_ms": to_ms(float(e.ttft_s[pos])),
                "tpot_mean_ms": to_ms(float(e.tpot_s[pos])),
                "tpot_p50_ms": to_ms(float(e.tpot_s[pos])),
                "e2e_p50_ms": to_ms(float(e.e2e_s[pos])),
            }
    return out


@dataclass(frozen=True)
class FastPredictor:
    """A :class:`~hierro.accuracy.validate.Predictor` answering from predictions computed at
    once (:func:`exact_predictions`) under one calibration; rows outside the set are declined."""

    answers: dict[str, RowPrediction | Skip]

    @classmethod
    def build(cls, prep: Prepared, calib: Calibration, rows: Sequence[int] | None = None) -> FastPredictor:
        """Predictions for ``rows`` (default: all) of ``prep`` under ``calib``; skipped rows
        answer with their reason."""
        want = range(len(prep.rows)) if rows is None else rows
        ok = [i for i in want if prep.skips[i] is None]
        answers: dict[str, RowPrediction | Skip] = {}
        for i in want:
            reason = prep.skips[i]
            if reason is not None:
                answers[prep.rows[i].id] = Skip(reason)
        for i, values in exact_predictions(prep, calib, ok).items():
            names = _OFFLINE_METRICS if prep.offline[i] else tuple(values)
            answers[prep.rows[i].id] = RowPrediction({k: Band.point(values[k]) for k in names})
        return cls(answers)

    def predict(self, row: Measurement) -> RowPrediction | Skip:
        return self.answers.get(row.id, Skip("not in the fitted evaluator's rows"))
