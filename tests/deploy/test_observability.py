"""deploy/prometheus and deploy/grafana: configs parse and use only metrics and labels app/metrics.py defines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from app import metrics

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy/prometheus"
DASHBOARD = ROOT / "deploy/grafana/dryapi-dashboard.json"
_METRIC = re.compile(r"\b(dryapi_[a-z_]+)\b")
_SELECTOR = re.compile(r"\b(dryapi_[a-z_]+)\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# Labels Prometheus adds at scrape time or by relabelling, and histogram buckets.
_TARGET_LABELS = {"job", "instance", "le", "namespace", "pod", "deployment"}


def _series_labels() -> dict[str, set[str]]:
    """Every series name app/metrics.py exports, with its label names."""
    series: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, (Counter, Gauge, Histogram)):
            continue
        name, labels = value._name, set(value._labelnames)
        if isinstance(value, Counter):
            series[f"{name}_total"] = labels
        elif isinstance(value, Histogram):
            for suffix in ("_bucket", "_sum", "_count"):
                series[name + suffix] = labels
        else:
            series[name] = labels
    return series


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def _dashboard_exprs() -> list[str]:
    dashboard = _dashboard()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    return exprs


def _check_expr(expr: str, series: dict[str, set[str]]) -> None:
    used = set(_METRIC.findall(expr))
    assert used, expr
    unknown = used - set(series)
    assert not unknown, f"metrics not in app/metrics.py: {unknown} in {expr}"
    for name, matchers in _SELECTOR.findall(expr):
        labels = {m.split("=")[0].strip().rstrip("!~") for m in matchers.split(",") if m.strip()}
        assert labels <= series[name] | _TARGET_LABELS, f"{name} has no label {labels - series[name]}"
    available = set().union(*(series[name] for name in used)) | _TARGET_LABELS
    for group in _GROUPING.findall(expr):
        labels = {label.strip() for label in group.split(",") if label.strip()}
        assert labels <= available, f"grouping by unknown labels {labels - available} in {expr}"


def test_the_metric_catalogue_is_the_one_the_issue_pins() -> None:
    series = _series_labels()
    assert series["dryapi_requests_total"] == {"route", "method", "status"}
    assert series["dryapi_upstream_request_duration_seconds_bucket"] == {"endpoint", "operation", "status"}
    assert series["dryapi_jobs_total"] == {"surface", "status"}
    assert series["dryapi_webhook_deliveries_total"] == {"outcome"}
    assert series["dryapi_rate_limited_total"] == {"tier", "surface"}
    assert series["dryapi_routing_reloads_total"] == {"result"}
    for name in ("dryapi_gateway_overhead_seconds_count", "dryapi_stream_first_chunk_seconds_sum",
                 "dryapi_request_duration_seconds_bucket", "dryapi_websocket_connections"):
        assert name in series


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus.kubernetes.yml"])
def test_scrape_configs(name: str) -> None:
    config = yaml.safe_load((PROM / name).read_text())
    assert config["global"]["scrape_interval"]
    for rule_file in config["rule_files"]:
        assert (PROM / rule_file).is_file()
    jobs = config["scrape_configs"]
    assert [job["job_name"] for job in jobs] == ["dryapi-gateway"]
    (job,) = jobs
    if "static_configs" in job:  # compose: the gateway service and its port
        compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
        assert job["static_configs"][0]["targets"] == ["gateway:8000"]
        assert "127.0.0.1:8000:8000" in compose["services"]["gateway"]["ports"]
        assert job["metrics_path"] == "/metrics"
    else:  # in-cluster: pods opted in by the Deployment's annotations
        assert job["kubernetes_sd_configs"][0]["role"] == "pod"
        keep = job["relabel_configs"][0]
        assert keep["action"] == "keep" and "prometheus_io_scrape" in keep["source_labels"][0]


def test_alert_rules_cover_the_issue_and_use_real_metrics() -> None:
    series = _series_labels()
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for required in ("DryapiHighErrorRate", "DryapiGatewayOverheadP99High", "DryapiWebhookDeliveriesFailing",
                     "DryapiRedisUnavailable", "DryapiRateLimitedSurge"):
        assert required in names
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        if rule["alert"] != "DryapiGatewayDown":  # `up` is Prometheus' own
            _check_expr(rule["expr"], series)
    overhead = next(r for r in rules if r["alert"] == "DryapiGatewayOverheadP99High")
    assert "histogram_quantile(0.99" in overhead["expr"] and "> 0.003" in overhead["expr"]
    redis = next(r for r in rules if r["alert"] == "DryapiRedisUnavailable")
    assert 'route="/readyz"' in redis["expr"] and 'status="503"' in redis["expr"]


def test_dashboard_panels_have_datasource_and_targets_on_real_metrics() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        covered = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and panel["description"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"]
    series = _series_labels()
    exprs = _dashboard_exprs()
    for expr in exprs:
        _check_expr(expr, series)
    # Every metric the gateway exports is on the dashboard.
    shown = {name.removesuffix(s) for e in exprs for name in _METRIC.findall(e)
             for s in ("_bucket", "_count", "_sum", "") if name.endswith(s)}
    for value in vars(metrics).values():
        if isinstance(value, (Counter, Gauge, Histogram)):
            assert value._name in shown or f"{value._name}_total" in shown, value._name


def test_dashboard_has_the_panels_an_operator_reads() -> None:
    titles = {p["title"] for p in _dashboard()["panels"]}
    for title in ("Requests by route and status", "Error rate by route", "Request latency p50 / p99 by route",
                  "Gateway overhead p50 / p99", "Upstream latency p99 by endpoint and operation",
                  "Stream time to first chunk p50 / p99", "Jobs by surface and status", "Webhook delivery outcomes",
                  "WebSocket connections", "Rate limited by tier and surface", "Routing reloads by result"):
        assert title in titles
    readme = (ROOT / "deploy/README.md").read_text()
    for rule in _alert_rules():
        assert f"`{rule['alert']}`" in readme  # every alert is explained to the operator
