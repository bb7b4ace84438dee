"""Dashboards per language: Vietnamese (the default) and English, the same queries, every text
of the Vietnamese ones translated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from contract.places import provinces
from dashboards.panels import LABEL_HEADERS
from dashboards.promql import JSON_DIR, load_dashboards, panels

VI = load_dashboards(JSON_DIR / "vi")
EN = load_dashboards(JSON_DIR / "en")
# What reads the same in both languages: names, codes and units, not English words.
NEUTRAL = re.compile(
    r"\{\{\s*\w+\s*\}\}|\{\w+\}|QoS fleet|QCVN|IPv6|NTP|Gb/s|Mb/s|\bCI\b|\bp\d\d\b|\bn\b"
    r"|\blat\b|\blon\b|[\d.,%/x()+-]"
)
# Place names some provinces write alike in both languages (Gia Lai, An Giang).
NAMES = {province.name_en for province in provinces().values()}


def texts(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every text a person reads in a dashboard: titles, descriptions, labels, legends, column
    names, value texts, link titles (by their place in the JSON)."""
    if isinstance(node, dict):
        for key, value in node.items():
            place = f"{path}/{key}"
            shown = {"title", "description", "label", "legendFormat", "text", "displayName"}
            if key in shown and isinstance(value, str):
                yield place, value
            if key == "renameByName" and isinstance(value, dict):
                yield from ((f"{place}/{k}", str(v)) for k, v in value.items())
            yield from texts(value, place)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from texts(item, f"{path}/{index}")


def test_both_languages_have_the_same_dashboards_and_queries() -> None:
    assert [d["uid"] for d in VI] == [d["uid"].removesuffix("-en") for d in EN]
    assert all(d["uid"].endswith("-en") for d in EN)
    for vi, en in zip(VI, EN, strict=True):
        assert [t["expr"] for p in panels(vi) for t in p["targets"]] == [
            t["expr"] for p in panels(en) for t in p["targets"]
        ]


def test_a_vietnamese_dashboard_has_no_english_text_left() -> None:
    untranslated = []
    for vi, en in zip(VI, EN, strict=True):
        english = dict(texts(en))
        found = dict(texts(vi))
        assert found.keys() == english.keys(), vi["uid"]
        for place, text in found.items():
            if text in NAMES:
                continue
            if text == english[place] and re.search(r"[A-Za-z]{3,}", NEUTRAL.sub("", text)):
                untranslated.append((vi["uid"], place, text))
    assert untranslated == []


def test_the_checker_sees_english_left_in_a_vietnamese_dashboard() -> None:
    english = {"panels": [{"title": "Probes online", "legendFormat": "{{probe}}"}]}
    copied = dict(texts(english))
    assert [t for t in copied.values() if re.search(r"[A-Za-z]{3,}", NEUTRAL.sub("", t))] == [
        "Probes online"
    ]


def test_links_stay_within_their_language() -> None:
    for dashboards, language in ((VI, "vi"), (EN, "en")):
        uids = {d["uid"] for d in dashboards}
        for dashboard in dashboards:
            assert f"qosfleet-{language}" in dashboard["tags"]
            assert dashboard["links"][0]["tags"] == [f"qosfleet-{language}"]
            for panel in panels(dashboard):
                for rule in panel.get("fieldConfig", {}).get("overrides", []):
                    for prop in rule["properties"]:
                        if prop["id"] == "links":
                            for link in prop["value"]:
                                assert link["url"].split("/")[2] in uids, link["url"]


def test_each_language_is_provisioned_in_its_own_folder() -> None:
    provider = yaml.safe_load(
        (JSON_DIR.parent / "provisioning/dashboards/qosfleet.yaml").read_text()
    )
    paths = {entry["folder"]: entry["options"]["path"] for entry in provider["providers"]}
    assert sorted(paths.values()) == [
        "/var/lib/grafana/dashboards/qosfleet/en",
        "/var/lib/grafana/dashboards/qosfleet/vi",
    ]
    assert len(set(paths)) == 2


def test_table_columns_named_by_overrides_exist_in_each_language() -> None:
    """A column's unit, value texts or links apply by its shown name, which is translated: the
    override must name the column as that language shows it."""
    labels = set(LABEL_HEADERS)
    for dashboard in [*VI, *EN]:
        for panel in panels(dashboard):
            if panel["type"] != "table":
                continue
            organize = panel["transformations"][1]["options"]
            columns = set(organize["renameByName"].values()) | labels
            for rule in panel["fieldConfig"]["overrides"]:
                if rule["matcher"]["id"] == "byName":
                    assert rule["matcher"]["options"] in columns, (panel["title"], rule)
    sorted_by = [
        (p["options"]["sortBy"][0]["displayName"], p)
        for d in [*VI, *EN]
        for p in panels(d)
        if p.get("options", {}).get("sortBy")
    ]
    assert sorted_by
    for name, panel in sorted_by:
        assert name in panel["transformations"][1]["options"]["renameByName"].values()
