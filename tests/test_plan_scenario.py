"""Scenario schema: the built-in default validates and sources every assumption; a bad file
raises one line naming the file and the field; overrides reach any field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hierro.errors import CatalogError, HierroError
from hierro.plan import apply_overrides, default_scenario, load_scenario, scenario_from_dict

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _default_dict() -> dict[str, Any]:
    return default_scenario().model_dump(exclude_defaults=True)


def test_default_validates_and_adds_up() -> None:
    s = default_scenario()
    assert s.capital.round_usd == pytest.approx(100e9)
    assert sum(s.valuation.investors.values()) == pytest.approx(s.capital.round_usd)
    provider = [i for i in s.capital.instruments if i.investor == "cloud provider"]
    assert sum(i.amount_usd for i in provider) >= 50e9
    kinds = {inst.kind for _, _, inst in s.capital.flat()}
    assert kinds == {"cash_equity", "cloud_credits", "compute_contract"}
    assert s.models and s.training


def _walk(node: Any, path: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.items():
            _walk(v, f"{path}.{k}", out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, f"{path}.{i}", out)


def test_default_sources_name_real_fields_and_cover_demand() -> None:
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "src/hierro/plan/data/default.yaml").read_text())
    blocks: list[tuple[str, dict[str, Any]]] = []
    _walk(data, "", blocks)
    for path, node in blocks:
        for key, src in (node.get("sources") or {}).items():
            assert src.strip(), f"{path}.{key}: empty source"
            assert key in node or key in ("amount_usd", "usd_per_gpu_hour", "power_MW", "usd_per_kwh"), f"{path}.{key}"
    for m in data["models"]:
        d = m["demand"]
        missing = [k for k in d if k != "sources" and k not in d["sources"]]
        assert not missing, f"{m['name']}: unsourced {missing}"


def test_round_must_add_up() -> None:
    d = _default_dict()
    d["capital"]["round_usd"] = 90e9
    with pytest.raises(CatalogError, match=r"capital: instruments add up to .* not the round"):
        scenario_from_dict(d, "x.yaml")


def test_bad_field_named_with_file(tmp_path: Path) -> None:
    d = _default_dict()
    d["models"][0]["demand"]["isl"] = -5
    d["accelerators"][0]["colour"] = "green"
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(d))
    with pytest.raises(CatalogError) as err:
        load_scenario(f)
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and all(str(f) in line for line in lines)  # one line per problem
    assert any("models.0.demand.isl" in line for line in lines)
    assert any("accelerators.0.colour" in line for line in lines)


def test_bad_slo_and_unknown_instrument_kind() -> None:
    d = _default_dict()
    d["models"][1]["slo"] = {"ttft_p99": "fast"}
    with pytest.raises(CatalogError, match=r"models\.1: .*duration"):
        scenario_from_dict(d)
    d = _default_dict()
    d["capital"]["instruments"][1]["kind"] = "loan"
    with pytest.raises(CatalogError, match=r"capital\.instruments\.1"):
        scenario_from_dict(d)


def test_training_gpu_must_be_on_offer() -> None:
    d = _default_dict()
    d["training"][0]["gpu"] = "h100-sxm"
    with pytest.raises(CatalogError, match="not in accelerators"):
        scenario_from_dict(d)


def test_overrides() -> None:
    s = load_scenario(None, ["models.0.demand.weekly_users=1e9", "capital.invest_surplus=false"])
    assert s.models[0].demand.weekly_users == 1e9 and s.capital.invest_surplus is False
    with pytest.raises(HierroError, match="PATH=VALUE"):
        apply_overrides({}, ["nonsense"])
    with pytest.raises(HierroError, match="no item 7"):
        load_scenario(None, ["models.7.name=x"])


def test_missing_file_and_examples_validate(tmp_path: Path) -> None:
    with pytest.raises(HierroError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert files
    for f in files:
        load_scenario(f)


def test_deployment_fields_validate_one_line_each() -> None:
    d = _default_dict()
    d["accelerators"][0]["supply_per_quarter"] = [1000, 2000]  # supply_per_year is already given
    d["capital"]["instruments"][0]["parts"][2]["start_month"] = -3
    d["sites"][1]["build_MW_per_month"] = 0
    d["models"][0]["api_price"] = "gpt-9"
    with pytest.raises(CatalogError) as err:
        scenario_from_dict(d, "x.yaml")
    lines = str(err.value).splitlines()
    assert len(lines) == 4 and all(line.startswith("x.yaml: ") for line in lines)
    assert any("accelerators.0" in line and "not both" in line for line in lines)
    assert any("capital.instruments.0.parts.2.start_month" in line for line in lines)
    assert any("sites.1.build_MW_per_month" in line for line in lines)
    assert any("models.0" in line and "gpt-9" in line for line in lines)


def test_supply_cap_is_the_ramp_total() -> None:
    s = default_scenario()
    caps = {a.id: a.supply_cap for a in s.accelerators}
    assert caps["gb300"] == 300_000 and caps["gb200"] == 600_000
    d = _default_dict()
    d["accelerators"][0].pop("supply_per_year")
    assert scenario_from_dict(d).accelerators[0].supply_cap is None


def test_a_rental_starting_after_the_horizon_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"capital\.instruments\.0\.parts\.2\.start_month: 60 is at or after the "
                                           r"end of the horizon \(month 48\)"):
        load_scenario(None, ["capital.instruments.0.parts.2.start_month=60"])
    s = load_scenario(None, ["capital.instruments.0.parts.2.start_month=47", "horizon_years=4"])
    assert s.capital.flat()[2][2].kind == "compute_contract"
