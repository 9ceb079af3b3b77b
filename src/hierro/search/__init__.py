"""Search layer: the configuration space of a serving deployment, its analytic screen, SLO
filtering with simulator confirmation, Pareto frontiers and fleet sizing; run in this process,
on local cores or on a Ray cluster.

    >>> from hierro.search import Demand, SearchRequest, parse_slos, search
    >>> req = SearchRequest("llama-3.1-70b", 2048, 512, Demand(20.0),
    ...                     parse_slos(["ttft_p99=1s", "tpot_p99=40ms"]))   # doctest: +SKIP
    >>> search(req).best                                                   # doctest: +SKIP
"""

from hierro.search.backends import (
    BACKENDS,
    Backend,
    LocalBackend,
    RayBackend,
    SerialBackend,
    make_backend,
)
from hierro.search.confirm import SimCheck, SimJob, run_sim_job, simulate_candidate
from hierro.search.demand import (
    CurveFleet,
    CurvePart,
    DemandSpec,
    curve_fleet,
    diurnal,
    load_curve,
)
from hierro.search.disagg import (
    DisaggCandidate,
    DisaggJob,
    DisaggScreen,
    PoolJob,
    PoolRaw,
    pool_groups,
    run_disagg_job,
    screen_disagg,
)
from hierro.search.fleet import (
    Bucket,
    Fleet,
    FleetPart,
    best_homogeneous,
    mix_fleet,
    offers_from_search,
)
from hierro.search.fleetfile import SharedSpec, load_shared, shared_from_dict
from hierro.search.optimize import (
    OBJECTIVES,
    Budget,
    Recommendation,
    SearchRequest,
    SearchResult,
    search,
)
from hierro.search.pareto import pareto_front
from hierro.search.screen import GpuPrice, ScreenTable, gpu_prices
from hierro.search.shared import SharedFleet, SharedModel, SharedPool, search_shared
from hierro.search.slo import (
    SCREEN_FACTOR,
    Demand,
    SloTarget,
    parse_duration,
    parse_slo,
    parse_slos,
)
from hierro.search.space import Candidate, Group, SearchSpace, Space, enumerate_space

__all__ = [
    "BACKENDS",
    "OBJECTIVES",
    "SCREEN_FACTOR",
    "Backend",
    "Bucket",
    "Budget",
    "Candidate",
    "CurveFleet",
    "CurvePart",
    "Demand",
    "DemandSpec",
    "DisaggCandidate",
    "DisaggJob",
    "DisaggScreen",
    "Fleet",
    "FleetPart",
    "GpuPrice",
    "Group",
    "LocalBackend",
    "PoolJob",
    "PoolRaw",
    "RayBackend",
    "Recommendation",
    "ScreenTable",
    "SearchRequest",
    "SearchResult",
    "SearchSpace",
    "SerialBackend",
    "SharedFleet",
    "SharedModel",
    "SharedPool",
    "SharedSpec",
    "SimCheck",
    "SimJob",
    "SloTarget",
    "Space",
    "best_homogeneous",
    "curve_fleet",
    "diurnal",
    "enumerate_space",
    "gpu_prices",
    "load_curve",
    "load_shared",
    "make_backend",
    "mix_fleet",
    "offers_from_search",
    "pareto_front",
    "parse_duration",
    "parse_slo",
    "parse_slos",
    "pool_groups",
    "run_disagg_job",
    "run_sim_job",
    "screen_disagg",
    "search",
    "search_shared",
    "shared_from_dict",
    "simulate_candidate",
]
