"""Writes the emulator's catalogue of Falcon operations from an installed falconpy.

Usage: python scripts/make_operations.py [OUTPUT]
(default: requests_falcon_auth/testing/_operations.json)

falconpy's ``falconpy/_endpoint/*.py`` modules are CrowdStrike's own operation table: for each
operation its id, method, path, description, collection and swagger-style parameters. The
emulator routes and checks every call against it, but must not import falconpy when it runs
(falconpy is not a dependency of the package), so this script keeps what routing and checking
need, drops the descriptions, and writes one operation a line with the falconpy version it came
from. Two facts the table lacks are read from falconpy's service classes: the JSON body key that
an entity lookup by POST takes (``composite_ids`` for alerts, ``ids`` for most), from the
``payload_value`` each method hands to ``generic_payload_list``.

Two small tables below add what neither falconpy module says, each entry with its public source:
the success status of the creates that Falcon answers 200 rather than 201 (``SUCCESS_STATUS``),
and the format of the ids some lookups take (``ID_FORMATS``), so that an id that cannot be one
is refused with 400, as Falcon refuses it, rather than looked up.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import sys
from importlib import metadata

KEPT = (
    "name",
    "in",
    "type",
    "required",
    "enum",
    "default",
    "minimum",
    "maximum",
    "maxItems",
    "collectionFormat",
)
# "The maximum records to return. [1-5000]": bounds the table writes only in a description.
BOUNDS = re.compile(r"\[(\d+)\s*-\s*(\d+)\]")
# Creates whose swagger answers 200 (or 202), not 201 (go-swagger's reader in CrowdStrike/gofalcon
# falcon/client/<collection>/<operation>_responses.go has ``case 200:`` and no ``case 201:``, or
# PSFalcon 2.0's Data/Endpoints/policy/<operation>.psd1 lists ``Responses = @{ 200 = ...``).
SUCCESS_STATUS = {
    "createPolicies": 200,  # gofalcon filevantage/create_policies_responses.go
    "createRuleGroups": 200,  # gofalcon filevantage/create_rule_groups_responses.go
    "createRules": 200,  # gofalcon filevantage/create_rules_responses.go
    "createScheduledExclusions": 200,  # gofalcon filevantage/create_scheduled_exclusions_...
    "signalChangesExternal": 200,  # gofalcon filevantage/signal_changes_external_responses.go
    "startActions": 202,  # gofalcon filevantage/start_actions_responses.go: case 202 only
    "CreateCaseV2": 200,  # gofalcon message_center/create_case_v2_responses.go
    "CaseAddActivity": 200,  # gofalcon message_center/case_add_activity_responses.go
    "createIOAExclusionsV1": 200,  # gofalcon ioa_exclusions/create_i_o_a_exclusions_v1_responses.go
    "ss_ioa_exclusions_create_v2": 200,  # gofalcon ioa_exclusions/ss_ioa_exclusions_create_v2
    "ss_ioa_exclusions_matched_rule_v2": 200,  # gofalcon ioa_exclusions/..._matched_rule_v2
    "ss_ioa_exclusions_new_rules_v2": 200,  # gofalcon ioa_exclusions/..._new_rules_v2
    "createMLExclusionsV1": 200,  # PSFalcon 2.0 Data/Endpoints/policy/createMLExclusionsV1.psd1
    "setSensorUpdatePoliciesPrecedence": 200,  # PSFalcon 2.0 .../setSensorUpdatePoliciesPrecedence
}
# The ids some lookups take, by operation and parameter. Each format is public: PSFalcon's
# cmdlets validate them before sending (public/<collection>.ps1, ``ValidatePattern``), falconpy's
# table describes them, or Falcon's own records carry them.
ID_FORMATS = {
    # PSFalcon public/spotlight.ps1 Get-FalconVulnerability: <aid>_<vulnerability hash>.
    "getVulnerabilities": {"ids": "[a-fA-F0-9]{32}_[a-fA-F0-9]{32}"},
    # PSFalcon public/hunting.ps1 Get-FalconCaoQuery.
    "GetIntelligenceQueries": {"ids": "[a-fA-F0-9]{64}_[a-fA-F0-9]{64}"},
    # PSFalcon public/user-management.ps1 Add-FalconRole: a user's UUID.
    "GrantUserRoleIds": {"user_uuid": r"\w{8}-\w{4}-\w{4}-\w{4}-\w{12}"},
    # falconpy's table: "sha256 checksum for file", "function ref; form of $fn_id:$fn_version".
    "ReadRequestBody": {"sha256": "[a-fA-F0-9]{64}", "fn": "[^:]+:[^:]+"},
    # Graph ids are typed, <kind>:<scope>:<id> (pid:<aid>:<n>, ldt:..., ind:..., as Falcon's
    # detections carry them in triggering_process_graph_id and control_graph_id).
    "entities_vertices_get": {"ids": "[a-z_]+:.+"},
    "entities_vertices_getv2": {"ids": "[a-z_]+:.+"},
    "combined_summary_get": {"ids": "[a-z_]+:.+"},
}
DEFAULT_OUTPUT = (
    pathlib.Path(__file__).resolve().parent.parent
    / "requests_falcon_auth"
    / "testing"
    / "_operations.json"
)


def parameter(raw: dict[str, object]) -> dict[str, object]:
    """A parameter with only the keys the emulator checks (an array's item type as ``items``);
    an integer's bounds from its description when the table gives none."""
    kept = {key: raw[key] for key in KEPT if key in raw and raw[key] not in (None, False)}
    items = raw.get("items")
    if isinstance(items, dict) and isinstance(items.get("type"), str):
        kept["items"] = items["type"]
    bounds = BOUNDS.findall(str(raw.get("description", "")))
    if raw.get("type") == "integer" and len(bounds) == 1 and not {"minimum", "maximum"} & set(raw):
        kept["minimum"], kept["maximum"] = int(bounds[0][0]), int(bounds[0][1])
    return kept


def expires(description: str, params: list[dict[str, object]]) -> bool:
    """Whether a cursor operation documents that its cursor expires (``meta.pagination.
    expires_at``): the devices scroll does."""
    cursor = any(
        p.get("name") == "after" or (p.get("name") == "offset" and p.get("type") == "string")
        for p in params
    )
    text = " ".join([description, *(str(p.get("description", "")) for p in params)])
    return cursor and "expire" in text.lower()


def named_path(path: str, params: list[dict[str, object]]) -> str:
    """falconpy writes some path parameters as ``{}``: named here, in order, from its table."""
    names = [str(p["name"]) for p in params if p.get("in") == "path"]
    parts = path.split("{}")
    named = parts[0]
    for position, part in enumerate(parts[1:]):
        name = names[position] if position < len(names) else f"param{position}"
        named += "{" + name + "}" + part
    return named


def body_keys(package: pathlib.Path) -> dict[str, str]:
    """Operation id -> the JSON body key its falconpy method builds from positional ids."""
    keys: dict[str, str] = {}
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            payloads, operations = set(), set()
            for node in ast.walk(function):
                if isinstance(node, ast.keyword) and isinstance(node.value, ast.Constant):
                    if node.arg == "payload_value":
                        payloads.add(node.value.value)
                    elif node.arg == "operation_id":
                        operations.add(node.value.value)
                elif (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Constant)
                    and any(
                        isinstance(t, ast.Name) and t.id == "operation_id" for t in node.targets
                    )
                ):
                    operations.add(node.value.value)
            if len(payloads) == 1 and len(operations) == 1:
                keys[operations.pop()] = payloads.pop()
    return keys


def main(argv: list[str]) -> int:
    from falconpy import _endpoint
    from falconpy._endpoint import api_endpoints

    version = metadata.version("crowdstrike-falconpy")
    package = pathlib.Path(_endpoint.__file__).resolve().parent.parent
    keys = body_keys(package)
    merged: dict[tuple[str, str], dict[str, object]] = {}
    for operation_id, method, raw_path, description, _collection, params in api_endpoints:
        path = named_path(raw_path, params)
        entry = merged.setdefault(
            (method, path),
            {"ids": [], "method": method, "path": path, "params": [parameter(p) for p in params]},
        )
        ids = entry["ids"]
        assert isinstance(ids, list)
        if operation_id not in ids:
            ids.append(operation_id)
        if operation_id in keys and "body_key" not in entry:
            entry["body_key"] = keys[operation_id]
        if operation_id in SUCCESS_STATUS:
            entry["status"] = SUCCESS_STATUS[operation_id]
        if operation_id in ID_FORMATS:
            entry["id_formats"] = ID_FORMATS[operation_id]
        if expires(description, params):
            entry["expires"] = True
    named = {operation[0] for operation in api_endpoints}
    unknown = sorted((set(SUCCESS_STATUS) | set(ID_FORMATS)) - named)
    if unknown:
        raise SystemExit(f"not in falconpy's table: {', '.join(unknown)}")
    output = pathlib.Path(argv[0]) if argv else DEFAULT_OUTPUT
    lines = [json.dumps(op, separators=(",", ":"), sort_keys=True) for op in merged.values()]
    source = f"crowdstrike-falconpy {version}, falconpy/_endpoint (scripts/make_operations.py)"
    output.write_text(
        '{"source":' + json.dumps(source) + ',\n"operations":[\n' + ",\n".join(lines) + "\n]}\n",
        encoding="utf-8",
    )
    print(f"{output}: {len(lines)} operations from crowdstrike-falconpy {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
