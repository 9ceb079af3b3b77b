"""``plan_cmd`` through a local typer app: JSON shape, charts, terminal report, exit 2 on a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from hierro.cli.plan import plan_cmd
from hierro.errors import HierroError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "neocloud-deal.yaml"

app = typer.Typer()
app.command("plan")(plan_cmd)
app.command("noop")(lambda: None)


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["plan", *args])
    if isinstance(r.exception, HierroError):
        return 2, str(r.exception)
    return r.exit_code, r.stdout


def test_plan_json_and_charts(tmp_path: Path) -> None:
    code, text = _invoke(str(EXAMPLE), "--json", "--charts", str(tmp_path))
    assert code == 0, text
    d = json.loads(text)
    for key in ("round_usd", "spent_usd", "left_usd", "binding", "models", "training", "instruments", "sites",
                "supply", "valuation", "assumptions", "growth", "files", "timeline", "served_month",
                "horizon_tokens", "horizon_usd_per_mtok", "steady_usd_per_mtok"):
        assert key in d, key
    assert d["spent_usd"] + d["left_usd"] == round_usd_close(d["round_usd"], d["spent_usd"] + d["left_usd"])
    assert d["binding"]["constraint"] in ("money", "power", "supply", "latency", "deadline", "none")
    m = d["models"][0]
    assert m["served_fraction"] == 1.0 and m["usd_per_mtok_output"] > 0 and m["options"]
    assert abs(sum(d["valuation"]["stakes"].values()) - 1.0) < 1e-9
    assert {Path(f).name for f in d["files"]} == {"capital.png", "fleet.png", "cost_latency.png", "timeline.png"}
    tl = d["timeline"]
    assert len(tl["months"]) == len(tl["accelerators"]) == len(tl["tokens_per_day"]) >= 48
    assert d["served_month"] == max(tl["demand_met_month"].values())
    for i in d["instruments"]:
        assert i["tokens_per_day"] == i["peak_tok_s"] * 86400
        assert i["full_online_month"] is None or i["full_online_month"] >= i["first_online_month"]
    for f in d["files"]:
        assert Path(f).read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def round_usd_close(expected: float, got: float) -> float:
    return got if abs(got - expected) <= 1e-6 * expected else expected


def test_plan_tables_with_override() -> None:
    code, text = _invoke(str(EXAMPLE), "--set", "sites.0.power_MW=5", "--no-assumptions")
    assert code == 0, text
    assert "binds:" in text and "Serving at peak" in text and "Valuation" in text
    assert "Deployment timeline" in text and "What each instrument buys" in text
    assert "Tokens over the 4-year horizon" in text


def test_bad_file_exit_2(tmp_path: Path) -> None:
    d = yaml.safe_load(EXAMPLE.read_text())
    d["capital"]["round_usd"] = "lots"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(d))
    code, text = _invoke(str(bad), "--json", "--charts", str(tmp_path / "charts"))
    assert code == 2 and "\n" not in text and "capital.round_usd" in text and str(bad) in text
    assert not (tmp_path / "charts").exists()
