#!/usr/bin/env python3
"""Builds targets/mappings.yaml (embedded in kqlc) from ../shared/mappings-draft.yaml.

The draft holds sourced facts, partly as prose; this script keeps the machine-usable part
(logsource, sourcetype and index selection, field names per target) and resolves the prose
values with the choices written in SOURCE_OVERRIDES below, so that every decision is in one
place. Run it again after the draft changes:  scripts/build-mappings.py > targets/mappings.yaml
"""
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DRAFT = ROOT.parent / "shared" / "mappings-draft.yaml"

# Where the draft gives prose or several options, the choice kqlc makes (and why).
SOURCE_OVERRIDES = {
    "CommonSecurityLog (Cisco ASA)": {
        "name": "CommonSecurityLog",
        "note": "CommonSecurityLog is mapped as Cisco ASA, the only CEF vendor in the embedded mapping; "
                "give --mapping for other vendors",
    },
    "SecurityAlert": {"splunk": {"sourcetype": "ms365:defender:incident:alerts"}},
    "IdentityInfo": {
        "splunk": None,
        "elastic": {"index": "logs-entityanalytics_entra_id.*"},
        "note": "IdentityInfo (UEBA) has no native Splunk source; Elastic keeps Entra ID users in the entity analytics index",
    },
    "_GetWatchlist": {"skip": True},
    "AzureActivity": {"splunk": {"sourcetype": "azure:monitor:activity"}},
    "SecurityEvent": {
        "splunk": {"sourcetype": "XmlWinEventLog", "where": {"source": "XmlWinEventLog:Security"}},
        "elastic": {"index": "logs-system.security-*"},
    },
    "Syslog": {"splunk": {"sourcetype": "syslog"}, "elastic": {"index": "logs-system.syslog-*"}},
    "DeviceProcessEvents": {
        "splunk": {"sourcetype": "ms:defender:eventhub"},
        "elastic": {"index": "logs-m365_defender.event-*"},
    },
}


def where_clause(text):
    """`category=SignInLogs` / `a.b == "X"` -> {field: value}."""
    if not text:
        return None
    out = {}
    for part in re.split(r"\s+(?:and|AND)\s+", text.strip()):
        m = re.fullmatch(r'\s*([\w.@]+)\s*={1,2}\s*"?([^"]*)"?\s*', part)
        if not m:
            raise SystemExit(f"cannot read filter {text!r}")
        out[m.group(1)] = m.group(2)
    return out


def clean_field(value):
    """A target field name; `prefix.*` (the draft's way to say "the keys under") becomes
    the prefix, to which kqlc appends the rest of a path."""
    if value is None:
        return None
    if not isinstance(value, str) or re.search(r"[\s()]", value):
        raise SystemExit(f"field value needs an override: {value!r}")
    return value[:-2] if value.endswith(".*") else value


def split_columns(key, col):
    """The draft groups similar columns in one row: `SubjectUserSid / TargetUserSid`,
    `InitiatedBy.app.appId / servicePrincipalId`, `Account (seed 002)`. Yields one
    (column, values) per column: the first takes the row's values; each other one takes
    them with the first column's name replaced by its own where a value ends with that
    name, and is left unmapped for a target where it does not (nothing is invented)."""
    if key.startswith("<"):
        return []
    key = re.sub(r"\s*\(.*?\)\s*$", "", key)
    names = [n.strip() for n in key.split(" / ")]
    first = names[0]
    values = {side: clean_field(col.get(side)) for side in ("sigma", "splunk", "elastic")}
    out = [(first, dict(values))]
    parent = first.rsplit(".", 1)[0] + "." if "." in first else ""
    last = first.rsplit(".", 1)[-1]
    for name in names[1:]:
        if len(name) <= 4:
            continue  # `SourceTranslatedAddress / Port`: an abbreviation, not a column name
        full = parent + name if parent and "." not in name else name
        derived = {}
        for side, value in values.items():
            if value is None:
                derived[side] = None
            elif value.endswith(last):
                derived[side] = value[: len(value) - len(last)] + full.rsplit(".", 1)[-1]
        out.append((full, derived))
    return out


def build():
    draft = yaml.safe_load(DRAFT.read_text())
    tables = {**draft["tables"], **draft["second_wave_tables"]}
    out = {}
    for key, spec in tables.items():
        override = SOURCE_OVERRIDES.get(key, {})
        if override.get("skip"):
            continue
        name = override.get("name", key)
        entry = {}
        logsource = (spec.get("sigma") or {}).get("logsource")
        if logsource:
            entry["sigma"] = {"logsource": logsource}
        splunk = spec.get("splunk") or {}
        if "splunk" in override:
            if override["splunk"] is not None:
                entry["splunk"] = override["splunk"]
        elif splunk.get("sourcetype"):
            entry["splunk"] = {"sourcetype": splunk["sourcetype"]}
            if where_clause(splunk.get("filter")):
                entry["splunk"]["where"] = where_clause(splunk.get("filter"))
        elastic = spec.get("elastic") or {}
        if "elastic" in override:
            entry["elastic"] = override["elastic"]
        elif elastic.get("index"):
            entry["elastic"] = {"index": elastic["index"]}
            if where_clause(elastic.get("filter")):
                entry["elastic"]["where"] = where_clause(elastic.get("filter"))
        if override.get("note"):
            entry["note"] = override["note"]
        fields = {}
        for key, col in (spec.get("columns") or {}).items():
            for column, values in split_columns(key, col):
                fields[column] = values
                if col.get("note"):
                    fields[column]["note"] = " ".join(str(col["note"]).split())
        # AADNonInteractiveUserSignInLogs has SigninLogs' columns: the draft says so once.
        parent = (spec.get("sentinel") or {}).get("inherits_columns_from") or spec.get("inherits_columns_from")
        if parent:
            inherited = {}
            for key, col in (tables[parent].get("columns") or {}).items():
                for column, values in split_columns(key, col):
                    inherited[column] = values
            inherited.update(fields)
            fields = inherited
        entry["fields"] = fields
        out[name] = entry
    return {"tables": out}


if __name__ == "__main__":
    header = (
        "# Field and source mappings embedded in kqlc (override with --mapping FILE).\n"
        "# Generated by scripts/build-mappings.py from ../shared/mappings-draft.yaml, whose\n"
        "# `sources` say where each fact comes from. A field set to null has no equivalent in\n"
        "# that target; a column not listed keeps its Sentinel name (kqlc says so).\n"
    )
    sys.stdout.write(header + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=100))
