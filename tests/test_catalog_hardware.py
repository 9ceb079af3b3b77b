"""The accelerator and system catalogs: complete, linked, sourced and physically plausible."""

from __future__ import annotations

import pytest

from hierro.catalog import AcceleratorFile, Figure, SystemFile, accelerator_files, system_files

REQUIRED_ACCELERATORS = (
    "a100-sxm-80g",
    "l40s",
    "h100-sxm",
    "h100-pcie",
    "h100-nvl",
    "h800",
    "h200-sxm",
    "h200-nvl",
    "gh200-96g",
    "gh200-144g",
    "b200",
    "b300",
    "gb200",
    "gb300",
    "mi300x",
    "mi325x",
    "mi355x",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "tpu-v7",
    "trainium2",
    "trainium3",
    "gaudi3",
)

FAMILIES = {
    "ampere",
    "ada",
    "hopper",
    "blackwell",
    "blackwell-ultra",
    "cdna3",
    "cdna4",
    "tpu",
    "trainium",
    "gaudi",
}

ACCELERATORS = accelerator_files()
SYSTEMS = system_files()


def _figures(item: AcceleratorFile | SystemFile) -> list[tuple[str, Figure]]:
    """Every Figure in a catalog item, with a dotted path for error messages."""
    if isinstance(item, SystemFile):
        return [("node_power_W", item.node_power_W)]
    out = [(f"peak_flops.{k}", v) for k, v in item.peak_flops.items()]
    for name in (
        "hbm_bytes",
        "hbm_bw_Bps",
        "scale_up_bw_Bps",
        "scale_out_bw_Bps",
        "host_bw_Bps",
        "tdp_W",
        "price_usd",
    ):
        fig = getattr(item, name)
        if fig is not None:
            out.append((name, fig))
    return out


def _peak(acc: AcceleratorFile, dtype: str) -> float | None:
    fig = acc.peak_flops.get(dtype)  # type: ignore[call-overload]
    return None if fig is None else fig.value


@pytest.mark.parametrize("acc_id", REQUIRED_ACCELERATORS)
def test_required_accelerator_present(acc_id: str) -> None:
    acc = ACCELERATORS.get(acc_id)
    assert acc is not None, f"catalog/gpus/{acc_id}.yaml is missing"
    assert acc.id == acc_id
    assert acc.family in FAMILIES


@pytest.mark.parametrize("acc_id", sorted(ACCELERATORS))
def test_system_link_round_trips(acc_id: str) -> None:
    acc = ACCELERATORS[acc_id]
    system = SYSTEMS.get(acc.system)
    assert system is not None, f"{acc_id}: system {acc.system!r} is not in catalog/systems"
    assert system.accelerator in ACCELERATORS, (
        f"{system.id}: accelerator {system.accelerator!r} unknown"
    )
    back = ACCELERATORS[system.accelerator]
    assert back.vendor == acc.vendor and back.family == acc.family


@pytest.mark.parametrize("sys_id", sorted(SYSTEMS))
def test_system_is_consistent(sys_id: str) -> None:
    system = SYSTEMS[sys_id]
    per_node, domain = system.accelerators_per_node, system.scale_up_domain
    if domain >= per_node:
        assert domain % per_node == 0, "a scale-up domain spans whole nodes"
    else:
        assert per_node % domain == 0, "bridged groups must tile the node"
    power = system.node_power_W.value
    if power is not None:
        tdp = ACCELERATORS[system.accelerator].tdp_W.value
        if tdp is not None:
            assert power >= per_node * tdp, (
                f"{sys_id}: {power} W is below {per_node} x {tdp} W of accelerators"
            )
        assert power <= 250e3  # an NVL72 rack is the largest "node" here


@pytest.mark.parametrize("acc_id", sorted(ACCELERATORS))
def test_low_precision_not_slower_than_bf16(acc_id: str) -> None:
    acc = ACCELERATORS[acc_id]
    bf16 = _peak(acc, "bf16")
    assert bf16 is not None
    for dtype in ("fp8", "fp4"):
        value = _peak(acc, dtype)
        if value is not None:
            assert value >= bf16 * 0.999, f"{acc_id}: {dtype} peak {value:g} < bf16 {bf16:g}"
    fp8, fp4 = _peak(acc, "fp8"), _peak(acc, "fp4")
    if fp8 is not None and fp4 is not None:
        assert fp4 >= fp8 * 0.999
    tf32 = _peak(acc, "tf32")
    if tf32 is not None:
        assert tf32 <= bf16 * 1.001


@pytest.mark.parametrize(
    "acc_id", sorted(a for a, f in ACCELERATORS.items() if f.vendor in ("nvidia", "amd"))
)
def test_gpu_fp8_is_twice_bf16(acc_id: str) -> None:
    """Dense FP8 is 2x dense BF16 on every NVIDIA/AMD tensor core generation that has FP8.

    A ratio near 4 means a sparse figure slipped in; near 1 means a BF16 figure was copied.
    """
    acc = ACCELERATORS[acc_id]
    fp8, bf16 = _peak(acc, "fp8"), _peak(acc, "bf16")
    if fp8 is None or bf16 is None:
        pytest.skip("no FP8 on this part")
    assert fp8 / bf16 == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("acc_id", sorted(ACCELERATORS))
def test_memory_and_bandwidth_plausible(acc_id: str) -> None:
    acc = ACCELERATORS[acc_id]
    hbm, bw = acc.hbm_bytes.value, acc.hbm_bw_Bps.value
    assert hbm is not None and 8e9 <= hbm <= 400e9
    assert bw is not None and 0.3e12 <= bw <= 12e12
    # Reading all of memory once takes between ~10 ms and ~100 ms on every part of 2020-2026.
    assert 0.005 <= hbm / bw <= 0.1
    up, out = acc.scale_up_bw_Bps.value, acc.scale_out_bw_Bps.value
    if up is not None:
        assert 10e9 <= up <= 2e12  # per direction: PCIe Gen4 x16 .. NeuronLink-v4
    if out is not None:
        assert 1e9 <= out <= 200e9  # 8 Gbit/s .. 1.6 Tbit/s per accelerator
    if up is not None and out is not None:
        assert up >= out, "the scale-up fabric should be faster than the scale-out NIC"
    tdp = acc.tdp_W.value
    if tdp is not None:
        assert 50 <= tdp <= 2000
    bf16 = _peak(acc, "bf16")
    assert bf16 is not None
    # Dense BF16 efficiency of 2020-2026 accelerators: 0.5 to 3 TFLOP/s per watt.
    if tdp is not None:
        assert 0.5e12 <= bf16 / tdp <= 3e12


@pytest.mark.parametrize("item_id", sorted(ACCELERATORS) + sorted(SYSTEMS))
def test_every_figure_is_sourced(item_id: str) -> None:
    item: AcceleratorFile | SystemFile = ACCELERATORS.get(item_id) or SYSTEMS[item_id]
    for where, fig in _figures(item):
        assert fig.source.strip(), f"{item_id}.{where}: empty source"
        assert fig.as_of.strip()
        if fig.value is None:
            assert fig.note.strip() or "unknown" in fig.source, (
                f"{item_id}.{where}: null without a reason"
            )
    if isinstance(item, SystemFile):
        assert item.source.strip() and item.scale_up_fabric.strip()
    else:
        for price in item.cloud_prices:
            assert price.source.strip() and price.provider.strip()
        tiers = [(p.provider, p.tier, p.as_of, p.usd_per_hour) for p in item.cloud_prices]
        assert len(tiers) == len(set(tiers)), f"{item_id}: duplicate cloud price"


@pytest.mark.parametrize(
    ("acc_id", "field", "expected"),
    [
        ("h100-sxm", "bf16", 989e12),  # NVIDIA H100 datasheet: 1,979 TFLOPS with sparsity
        ("h200-sxm", "hbm_bytes", 141 * 2**30),  # NVIDIA H200 datasheet
        ("b200", "hbm_bw_Bps", 8e12),  # NVIDIA DGX B200: 64 TB/s for 8 GPUs
        ("mi300x", "hbm_bytes", 192 * 2**30),  # AMD MI300X datasheet
    ],
)
def test_datasheet_spot_checks(acc_id: str, field: str, expected: float) -> None:
    acc = ACCELERATORS[acc_id]
    value = _peak(acc, field) if field in acc.peak_flops else getattr(acc, field).value
    assert value == pytest.approx(expected, rel=1e-3)
