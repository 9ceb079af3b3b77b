"""Heterogeneous fleets never cost more than the best homogeneous one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hierro.search import Bucket, best_homogeneous, mix_fleet, parse_slos
from hierro.search.fleet import Offer, offers_from_search
from hierro.search.space import SearchSpace
from hierro.specs import get_model


def _offer(i: int, price: float, rates: tuple[float, ...]) -> Offer:
    return Offer(f"o{i}", f"gpu{i}", 1, price, 1000.0, rates)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda nb: st.tuples(
            st.lists(st.tuples(st.floats(0.5, 10), st.lists(st.floats(0.1, 20), min_size=nb, max_size=nb)),
                     min_size=1, max_size=4),
            st.lists(st.floats(0.0, 50), min_size=nb, max_size=nb),
        )
    ),
    st.floats(0.0, 0.5),
)
def test_mix_never_costs_more_than_homogeneous(data: tuple[list[tuple[float, list[float]]], list[float]],
                                               headroom: float) -> None:
    raw, rates = data
    offers = [_offer(i, p, tuple(r)) for i, (p, r) in enumerate(raw)]
    buckets = [Bucket(100 * (b + 1), 100, r) for b, r in enumerate(rates)]
    mix = mix_fleet(offers, buckets, headroom)
    homo = best_homogeneous(offers, buckets, headroom)
    assert mix.usd_per_hour <= homo.usd_per_hour + 1e-9
    served = sorted(b for p in mix.parts for b in p.buckets)
    assert served == list(range(len(buckets)))


def test_mix_is_cheaper_when_buckets_favour_different_chips() -> None:
    # a cheap chip good at short requests, a dear one good at long ones (Mélange's case)
    small = _offer(0, 1.0, (10.0, 0.5))
    big = _offer(1, 3.0, (12.0, 6.0))
    buckets = [Bucket(256, 128, 40.0), Bucket(8192, 512, 12.0)]
    mix = mix_fleet([small, big], buckets, 0.0)
    homo = best_homogeneous([small, big], buckets, 0.0)
    assert mix.usd_per_hour < homo.usd_per_hour
    assert not mix.homogeneous


def test_offers_from_search_cover_the_buckets() -> None:
    space = SearchSpace(gpus=("h100-sxm", "mi300x"), weight_dtypes=("fp8",), kv_dtypes=("fp8",),
                        max_devices=4, max_pp=1, concurrency_step=2.0)
    buckets = [Bucket(512, 128, 10.0), Bucket(4096, 512, 2.0)]
    offers = offers_from_search(get_model("llama-3.1-8b"), buckets, parse_slos(["ttft_p99=1s", "tpot_p99=50ms"]),
                                space)
    assert offers and all(len(o.req_s) == 2 for o in offers)
    fleet = mix_fleet(offers, buckets)
    assert fleet.usd_per_hour <= best_homogeneous(offers, buckets).usd_per_hour + 1e-9
    assert fleet.gpus >= 1 and fleet.MW > 0
