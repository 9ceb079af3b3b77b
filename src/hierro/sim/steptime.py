"""A cheap, exact stand-in for :meth:`StepModel.time`, built once per instance.

The simulator prices every engine step; ``StepModel.time`` builds about twenty op objects per
call (~0.2 ms), too slow for millions of steps. Each op's time is a roofline
(Williams et al., CACM 2009)::

    t_c = F_op / (P · e_c),  t_m = B_op / (BW · e_m)
    t_op = max(t_c, t_m) + x_op · min(t_c, t_m) + C_op / (BW_link · e_l) + n_op · t_launch

and F_op, B_op and C_op are linear in a handful of features of the step shape: tokens, chunks,
decoding sequences, sampled rows, the (query, key) pairs attended under each attention window,
and the expert-hit fraction of an MoE layer. :class:`StepTime` fits those linear maps once from
vectorised ``StepModel.cost`` calls on random probe shapes, checks the fit to 1e-9, and then
prices a step with two small matrix-vector products.

Decode-only steps get a table instead: for each batch size B the time is piecewise linear in
the mean context d (linear between window knots d = w - 1), which is what lets the replica sum
k decode steps in closed form (an arithmetic series).

Pipeline parallelism is priced as the perf layer's estimate does: one iteration is ``pp``
stage steps of a 1/pp micro-batch each.

Speculative decoding (Leviathan et al., "Fast Inference from Transformers via Speculative
Decoding", ICML 2023; multi-token prediction as in DeepSeek-V3, arXiv:2412.19437 §2.2): with
``spec_tokens`` = k drafts per sequence, a decode becomes a verification of k + 1 query tokens
after d cached ones, priced as a prefill chunk of k + 1 tokens at context d (k + 1 rows of
logits), plus the draft: k draft forward passes, each ``draft_cost`` times a plain decode step of
the same batch (an MTP module is one extra layer: draft_cost = 1 / layers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hierro.perf import StepModel, StepShape
from hierro.sim.engine import SimError

__all__ = ["DecodeTable", "StepTime", "expected_accepted"]

F64 = NDArray[np.float64]

_FIT_RTOL = 1e-9
_SPEC_FIT_RTOL = 5e-3
"""Tolerance of the linear fit for a speculative decode table: verifying k + 1 tokens per
sequence can cross from memory- to compute-bound attention inside a window piece (a kink of the
roofline's max that is not a knot); the chord stays within half a percent of the step time."""
_PROBES_PER_FEATURE = 6


def _attended(ctx: F64, window: int | None, linear: bool) -> F64:
    """Mean keys attended at context ``ctx`` (as ``perf.ops._attended_mean``)."""
    if linear:
        return np.zeros_like(ctx)
    return ctx if window is None else np.minimum(ctx, float(window))


def expected_accepted(spec_tokens: int, acceptance: float) -> float:
    """Tokens one speculative step emits per sequence, (1 - α^(k+1)) / (1 - α) (Leviathan et
    al. 2023, eq. 1): the accepted drafts plus the target model's own token; k + 1 at α = 1."""
    if spec_tokens < 0 or not 0.0 <= acceptance <= 1.0:
        raise SimError(f"speculative decoding needs k >= 0 draft tokens and an acceptance rate in "
                       f"[0, 1], got k={spec_tokens}, alpha={acceptance}")
    if acceptance >= 1.0:
        return float(spec_tokens + 1)
    return (1.0 - acceptance ** (spec_tokens + 1)) / (1.0 - acceptance)


def mtp_draft_cost(sm: StepModel) -> float:
    """Draft cost of one multi-token-prediction module: one more layer, 1 / layers of a step."""
    return 1.0 / max(sm.model.n_layers, 1)


@dataclass(frozen=True, slots=True)
class _AttnKind:
    window: int | None
    linear: bool


class StepTime:
    """Fitted per-op linear model of :meth:`StepModel.time` for mixed prefill/decode steps.

    ``__call__(tp, ps, pctx, ds, dctx, sampled)`` mirrors :class:`StepShape`: ``tp`` prefill
    tokens in ``ps`` chunks after ``pctx`` cached tokens on average, ``ds`` decodes at mean
    context ``dctx``, ``sampled`` rows of logits. Returns seconds of one engine iteration.
    """

    def __init__(self, sm: StepModel, *, max_tokens: int = 8192, max_seqs: int = 1024,
                 max_ctx: int = 131072, seed: int = 0, spec_tokens: int = 0,
                 draft_cost: float = 0.0) -> None:
        self.sm = sm
        self.pp = sm.plan.pp
        if spec_tokens < 0 or draft_cost < 0:
            raise SimError(f"spec_tokens and draft_cost must be >= 0, got {spec_tokens}, {draft_cost}")
        self.spec = spec_tokens
        """Draft tokens per sequence and step (0: plain decoding)."""
        self.draft_cost = draft_cost
        kinds: list[_AttnKind] = []
        moes: list[tuple[float, float]] = []
        for layer, _ in sm.model.groups:
            k = _AttnKind(layer.attn.window, layer.attn.kind == "linear")
            if not k.linear and k not in kinds:
                kinds.append(k)
            if layer.mlp.kind == "moe":
                km = (float(layer.mlp.top_k), float(layer.mlp.n_experts))
                if km not in moes:
                    moes.append(km)
        self._kinds = tuple(kinds)
        self._moes = tuple(moes)
        self._kinds_scalar = tuple((None if k.window is None else float(k.window), k.linear) for k in kinds)
        self._moe_bases = tuple(1.0 - tk / ne for tk, ne in moes)
        rng = np.random.default_rng(seed)
        n_feat = 5 + 3 * len(kinds) + len(moes)
        n = _PROBES_PER_FEATURE * n_feat + 64
        tp = np.floor(np.exp(rng.uniform(0, math.log(max_tokens), n)) * (rng.random(n) < 0.8))
        ps = np.where(tp > 0, np.minimum(rng.integers(1, 17, n), np.maximum(tp, 1)), 0).astype(float)
        # contexts log-uniform so that every window knot has probes on both sides
        pctx = np.floor(np.exp(rng.uniform(0, math.log(max_ctx), n)) * (rng.random(n) < 0.7))
        ds = np.floor(rng.uniform(0, max_seqs, n))
        dctx = np.floor(np.exp(rng.uniform(0, math.log(max_ctx), n))) - 1.0
        # exercise the zero cases: decode-only and prefill-only steps
        tp[: n // 8] = 0.0
        ps[: n // 8] = 0.0
        ds[n // 8: n // 4] = 0.0
        sampled = ds + np.floor(rng.random(n) * (ps + 1))
        shape = StepShape(tp, ps, pctx, ds, dctx, sampled)
        cost = sm.cost(shape)
        phi = self.features(tp, ps, pctx, ds, dctx, sampled)
        scale = np.maximum(np.max(phi, axis=0), 1e-300)
        rows_c, rows_m, rows_k, launch, active, shares = [], [], [], [], [], []
        for op in cost.ops:
            ys = [np.broadcast_to(np.asarray(y, dtype=float), (n,)) for y in (op.compute_s, op.memory_s, op.comm_s)]
            coefs = []
            for y in ys:
                top = float(np.max(np.abs(y)))
                if top == 0.0:
                    coefs.append(np.zeros(phi.shape[1]))
                    continue
                c = np.linalg.lstsq(phi / scale, y / top, rcond=None)[0]
                c[np.abs(c) < 1e-11] = 0.0  # lstsq round-off on features the op ignores
                c = c * top / scale
                err = float(np.max(np.abs(phi @ c - y)))
                if err > _FIT_RTOL * top:
                    raise SimError(
                        f"step-time surrogate: op {op.name} of {sm.model.id} is not linear in the "
                        f"step features (residual {err:.3g} s); extend sim.steptime.features"
                    )
                coefs.append(c)
            rows_c.append(coefs[0])
            rows_m.append(coefs[1])
            rows_k.append(coefs[2])
            t = np.broadcast_to(np.asarray(op.time_s, dtype=float), (n,))
            lat = t - np.maximum(ys[0], ys[1]) - op.exposed * np.minimum(ys[0], ys[1]) - ys[2]
            launch.append(float(np.max(lat)))
            shares.append(op.exposed)
            active.append((coefs[0] != 0) | (coefs[1] != 0) | (coefs[2] != 0))
        self._C = np.array(rows_c)
        self._M = np.array(rows_m)
        self._K = np.array(rows_k).sum(axis=0)
        self._L = np.array(launch)
        self._A = np.array(active, dtype=float)
        self._over = float(cost.overhead_s)
        self._n_ops = len(rows_c)
        self._CMK = np.vstack([self._C, self._M, self._K[None, :]])
        self._launch: dict[tuple[bool, ...], float] = {}
        self._plain = self._kinds_scalar == ((None, False),) and not moes
        """One full-attention kind and no MoE layer: the features in one list."""
        self._x = np.empty(n_feat)
        """The feature vector of the step being priced (reused)."""
        self._pairs = tuple((i, i + self._n_ops) for i in range(self._n_ops))
        """(compute, memory) rows of each op in ``CMK @ phi``."""
        self._exposed = any(x > 0.0 for x in shares)
        """Whether some op shows a share of the shorter of its compute and memory times."""
        self._triples = tuple((i, i + self._n_ops, float(x)) for i, x in enumerate(shares))
        """(compute row, memory row, exposed share) of each op."""

    def features(self, tp: F64, ps: F64, pctx: F64, ds: F64, dctx: F64, sampled: F64) -> F64:
        """Feature matrix (n, f) of step shapes: the quantities every op is linear in."""
        q = tp / np.maximum(ps, 1.0)
        mean_keys = pctx + (q + 1.0) / 2.0
        cols = [np.ones_like(tp), tp, ps, ds, sampled]
        for k in self._kinds:
            cols.append(tp * _attended(mean_keys, k.window, k.linear))
            cols.append(ps * _attended(pctx, k.window, k.linear))
            cols.append(ds * _attended(dctx + 1.0, k.window, k.linear))
        T = tp + ds
        for top_k, n_exp in self._moes:
            cols.append(1.0 - (1.0 - top_k / n_exp) ** np.maximum(T, 0.0))
        return np.stack(cols, axis=-1)

    def __call__(self, tp: float, ps: float, pctx: float, ds: float, dctx: float, sampled: float) -> float:
        """Seconds of one engine iteration of this shape (``pp`` stage steps of 1/pp of it).

        With speculative decoding the ``ds`` decodes are verifications of k + 1 tokens plus
        their drafts (see the module docstring)."""
        if self.spec and ds > 0.0:
            return self._spec_call(tp, ps, pctx, ds, dctx, sampled)
        pp = self.pp
        if pp > 1:
            tp, ps, ds, sampled = tp / pp, ps / pp, ds / pp, sampled / pp
        # the scalar twin of features(): plain floats, no array round trips
        q = tp / ps if ps > 1.0 else tp
        mean_keys = pctx + (q + 1.0) * 0.5
        if self._plain:
            phi = [1.0, tp, ps, ds, sampled, tp * mean_keys, ps * pctx, ds * (dctx + 1.0)]
        else:
            phi = [1.0, tp, ps, ds, sampled]
            for window, _ in self._kinds_scalar:
                if window is None:
                    phi += (tp * mean_keys, ps * pctx, ds * (dctx + 1.0))
                else:
                    phi += (tp * min(mean_keys, window), ps * min(pctx, window), ds * min(dctx + 1.0, window))
            T = tp + ds
            for base in self._moe_bases:
                phi.append(1.0 - base ** T if T > 0.0 else 0.0)
        x = self._x
        x[:] = phi
        key = (tp > 0.0, ps > 0.0, ds > 0.0, sampled > 0.0)
        launch = self._launch.get(key)
        if launch is None:
            launch = self._launch[key] = float(self._L @ ((self._A @ (x > 0)) > 0)) + self._over
        # ndarray.dot: the same BLAS matrix-vector product as ``@`` (the same bits), without
        # the matmul ufunc's dispatch
        y = self._CMK.dot(x)
        if self._n_ops < 8 and not self._exposed:  # _ops_time, inline: op i's compute and memory times are v[i], v[i + n]
            v: list[float] = y.tolist()
            acc = 0.0
            for i, j in self._pairs:
                c = v[i]
                m = v[j]
                acc += c if c >= m else m
            return (acc + v[-1] + launch) * pp
        return (self._ops_time(y) + launch) * pp

    def _ops_time(self, y: F64) -> float:
        """Σ_ops max(compute, memory) + x · min(compute, memory) + communication, from
        ``y = CMK @ phi``."""
        n = self._n_ops
        if self._exposed:  # a plain loop: tens of ops cost less than four array calls
            w: list[float] = y.tolist()
            acc = 0.0
            for i, j, share in self._triples:
                c = w[i]
                m = w[j]
                acc += c + share * m if c >= m else m + share * c
            return acc + w[-1]
        if n < 8:
            # numpy sums fewer than 8 values one after the other from 0.0 (its pairwise sum
            # unrolls from 8 on), so plain floats give the same bits without the array calls
            v: list[float] = y.tolist()
            acc = 0.0
            for c, m in zip(v[:n], v[n:2 * n], strict=False):
                acc += c if c >= m else m
            return acc + v[-1]
        return float(np.maximum(y[:n], y[n:2 * n]).sum()) + float(y[-1])

    def _eval(self, phi: list[float], key: tuple[bool, bool, bool, bool]) -> float:
        x = np.array(phi)
        launch = self._launch.get(key)
        if launch is None:
            launch = self._launch[key] = float(self._L @ ((self._A @ (x > 0)) > 0)) + self._over
        return self._ops_time(self._CMK.dot(x)) + launch

    def _spec_call(self, tp: float, ps: float, pctx: float, ds: float, dctx: float, sampled: float) -> float:
        """A step whose ``ds`` decodes verify k + 1 tokens each: the prompt chunks and the
        verification chunks are two groups of one fused prefill (the features add), plus k
        draft passes of ``draft_cost`` times a plain decode step."""
        pp, k = self.pp, self.spec
        if pp > 1:
            tp, ps, ds, sampled = tp / pp, ps / pp, ds / pp, sampled / pp
        q = tp / ps if ps > 1.0 else tp
        mean_keys = pctx + (q + 1.0) * 0.5
        vt = ds * (k + 1)
        vkeys = dctx + (k + 2) * 0.5
        phi = [1.0, tp + vt, ps + ds, 0.0, sampled + ds * k]
        for window, _ in self._kinds_scalar:
            if window is None:
                phi += (tp * mean_keys + vt * vkeys, ps * pctx + ds * dctx, 0.0)
            else:
                phi += (tp * min(mean_keys, window) + vt * min(vkeys, window),
                        ps * min(pctx, window) + ds * min(dctx, window), 0.0)
        T = tp + vt
        for base in self._moe_bases:
            phi.append(1.0 - base ** T if T > 0.0 else 0.0)
        t = self._eval(phi, (True, True, False, True))
        if self.draft_cost > 0.0:
            d = [1.0, 0.0, 0.0, ds, ds]
            for window, _ in self._kinds_scalar:
                d += (0.0, 0.0, ds * (dctx + 1.0 if window is None else min(dctx + 1.0, window)))
            for base in self._moe_bases:
                d.append(1.0 - base ** ds)
            t += k * self.draft_cost * self._eval(d, (False, False, True, True))
        return t * pp

    def exact(self, tp: float, ps: float, pctx: float, ds: float, dctx: float, sampled: float) -> float:
        """The same iteration priced by ``StepModel.time`` itself (for checks)."""
        pp = self.pp
        shape = StepShape(tp / pp, ps / pp, pctx, ds / pp, dctx, sampled / pp)
        return float(self.sm.time(shape)) * pp


class DecodeTable:
    """Decode-only iteration time t(B, d) = v_p[B] + s_p[B]·(d - knot_p) on window pieces p.

    ``d`` is the mean cached context of the B decoding sequences; every decode step raises it
    by exactly one, so within a piece the times of consecutive steps form an arithmetic series.
    """

    def __init__(self, sm: StepModel, max_seqs: int, *, spec_tokens: int = 0,
                 draft_cost: float = 0.0) -> None:
        self.pp = pp = sm.plan.pp
        k = spec_tokens
        windows = {float(lay.attn.window) for lay, _ in sm.model.groups
                   if lay.attn.window is not None and lay.attn.kind != "linear"}
        # kinks of min(context, w): decode keys d + 1; verification keys d + (k+2)/2 and d
        kinks = {w - 1.0 for w in windows} if not k else {
            x for w in windows for x in (w - (k + 2) / 2.0, w, *((w - 1.0,) if draft_cost else ()))}
        knots = sorted(x for x in kinks if x > 0.0)
        self.knots: tuple[float, ...] = (0.0, *knots)
        B = np.arange(1, max_seqs + 1, dtype=float)
        P = len(self.knots)
        ends = [*self.knots[1:], self.knots[-1] + 65536.0]
        d0 = np.repeat(np.array(self.knots), max_seqs)
        d1 = np.repeat(np.array(ends), max_seqs)
        dm = 0.5 * (d0 + d1) + 0.25
        BB = np.tile(B, P)

        def t(d: F64) -> F64:
            shape = StepShape(decode_seqs=BB / pp, decode_ctx=d, sampled=BB / pp)
            plain = np.asarray(sm.time(shape), dtype=float) * pp
            if not k:
                return plain
            verify = StepShape(prefill_tokens=BB * (k + 1) / pp, prefill_seqs=BB / pp, prefill_ctx=d,
                               sampled=BB * (k + 1) / pp)
            return np.asarray(sm.time(verify), dtype=float) * pp + k * draft_cost * plain

        t0, t1, tm = t(d0), t(d1), t(dm)
        slope = (t1 - t0) / (d1 - d0)
        err = np.max(np.abs(t0 + slope * (dm - d0) - tm) / tm)
        if err > (_SPEC_FIT_RTOL if k else _FIT_RTOL):
            raise SimError(f"decode step time of {sm.model.id} is not piecewise linear in context "
                           f"(relative error {err:.3g}); the closed-form decode advance needs it")
        # row 0 is unused so that row B is batch size B
        self.value = np.vstack([np.zeros((1, P)), t0.reshape(P, max_seqs).T])
        self.slope = np.vstack([np.zeros((1, P)), slope.reshape(P, max_seqs).T])
        self.value_rows: list[list[float]] = self.value.tolist()
        """``value`` as nested Python lists (the same floats, for the replica's hot path)."""
        self.slope_rows: list[list[float]] = self.slope.tolist()
        self.max_seqs = max_seqs

    def piece(self, d: float) -> int:
        """Index of the piece that holds mean context ``d``."""
        p = 0
        if len(self.knots) == 1:
            return p
        for i, k in enumerate(self.knots):
            if d >= k:
                p = i
        return p

    def piece_end(self, p: int) -> float:
        """Largest context of piece ``p`` (inf for the last)."""
        return self.knots[p + 1] if p + 1 < len(self.knots) else math.inf

    def time(self, B: int, d: float) -> float:
        """Seconds of one decode iteration of B sequences at mean context d."""
        p = self.piece(d)
        return float(self.value[B, p] + self.slope[B, p] * (d - self.knots[p]))
