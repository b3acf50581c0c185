"""The Bicep templates: real syntax, settings parity with the app, one source for resources, no keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

from shared.platform.resources import RESOURCES_FILE, BlobContainers, CosmosContainers, Queues, Tables
from shared.platform.settings import NOT_DEPLOYED, setting_names

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
PLATFORM_SETTINGS = {
    # Read by the Functions host, not by the app's settings model.
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # The host's switch of one function (issue 19: the dataset refresh timer, off by default).
    "AzureWebJobs.refresh_datasets.Disabled",
}
PARSER = Parser(Language(tree_sitter_bicep.language()))


def parse(path: Path) -> Node:
    return PARSER.parse(path.read_bytes()).root_node


def walk(node: Node) -> list[Node]:
    nodes = [node]
    for child in node.children:
        nodes.extend(walk(child))
    return nodes


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


def string_value(node: Node) -> str:
    """A string literal without quotes (interpolations kept as written)."""
    return text(node)[1:-1] if node.type == "string" else text(node)


def app_settings_objects() -> list[tuple[Path, Node]]:
    found = []
    for path in BICEP_FILES:
        for node in walk(parse(path)):
            if node.type == "variable_declaration":
                name = next((c for c in node.children if c.type == "identifier"), None)
                value = node.children[-1]
                if name is not None and text(name) == "appSettings" and value.type == "object":
                    found.append((path, value))
    return found


def object_entries(obj: Node) -> dict[str, Node]:
    entries = {}
    for prop in (c for c in obj.children if c.type == "object_property"):
        key, value = prop.children[0], prop.children[-1]
        entries[string_value(key)] = value
    return entries


def test_there_are_bicep_templates_and_azd_files() -> None:
    assert (INFRA / "main.bicep").is_file()
    assert (INFRA / "main.parameters.json").is_file()
    assert (ROOT / "azure.yaml").is_file()
    assert len(BICEP_FILES) >= 4


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_bicep_file_parses_without_syntax_errors(path: Path) -> None:
    root = parse(path)
    broken = [n for n in walk(root) if n.type == "ERROR" or n.is_missing]
    locations = [f"line {n.start_point[0] + 1}: {text(n)[:60]!r}" for n in broken]
    assert not root.has_error, locations


def test_the_parser_does_reject_broken_bicep() -> None:
    assert PARSER.parse(
        b"resource sa 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: \n"
    ).root_node.has_error


def test_app_settings_match_the_settings_model_exactly() -> None:
    objects = app_settings_objects()
    assert len(objects) == 1, "app settings live in one `var appSettings = { ... }` object literal"
    deployed = set(object_entries(objects[0][1]))
    expected = {name for name in setting_names() if name not in NOT_DEPLOYED} | PLATFORM_SETTINGS

    missing = expected - deployed
    orphaned = deployed - expected
    assert not missing, f"settings the app reads but Bicep does not set: {sorted(missing)}"
    assert not orphaned, f"Bicep settings the app never reads: {sorted(orphaned)}"


def test_not_deployed_settings_are_real_settings_with_a_reason() -> None:
    names = set(setting_names())
    assert set(NOT_DEPLOYED) <= names
    assert all(reason.strip() for reason in NOT_DEPLOYED.values())


def test_no_app_setting_carries_a_key_or_keyed_connection_string() -> None:
    ((_, obj),) = app_settings_objects()
    forbidden = re.compile(
        r"listKeys|listConnectionStrings|AccountKey=|primaryMasterKey|SharedAccessKey|keys\(\)", re.I
    )
    for name, value in object_entries(obj).items():
        assert not forbidden.search(text(value)), f"{name} carries a key: {text(value)}"
    # Secrets come from Key Vault references.
    entries = object_entries(obj)
    for secret in ("M365_CLIENT_SECRET", "M365_CERTIFICATE_PEM", "DEVOPS_PAT"):
        assert "@Microsoft.KeyVault(" in text(entries[secret]), secret
    assert string_value(entries["AzureWebJobsStorage__credential"]) == "managedidentity"


def test_no_bicep_file_lists_storage_or_cosmos_keys() -> None:
    for path in BICEP_FILES:
        assert "listKeys(" not in path.read_text(), path


def test_resources_come_from_the_apps_single_source_of_truth() -> None:
    loads = {
        (path, string_value(node.children[-1].children[1]))
        for path in BICEP_FILES
        for node in walk(parse(path))
        if node.type == "call_expression" and text(node.children[0]) == "loadJsonContent"
    }
    resolved = {(path.parent / relative).resolve() for path, relative in loads}
    assert resolved == {RESOURCES_FILE.resolve()}, loads

    definitions = json.loads(RESOURCES_FILE.read_text())
    assert tuple(definitions["queues"]) == Queues.ALL
    assert tuple(definitions["tables"]) == Tables.ALL
    assert tuple(definitions["blobContainers"]) == BlobContainers.ALL
    assert [
        (c["name"], c["partitionKey"], c["ttlFromRetention"]) for c in definitions["cosmosContainers"]
    ] == [(c.name, c.partition_key_path, c.ttl_from_retention) for c in CosmosContainers.ALL]
    # The binding constants name real resources.
    assert {Queues.INGEST, Queues.ALERTS, Queues.BACKUP_TRIGGER, Queues.NOTIFY} <= set(Queues.ALL)


def test_cosmos_template_applies_partition_keys_ttl_and_excluded_paths_from_the_file() -> None:
    cosmos = [
        p
        for p in BICEP_FILES
        if "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers" in p.read_text()
    ]
    assert len(cosmos) == 1
    source = cosmos[0].read_text()
    assert "partitionKey" in source
    assert "excludedPaths" in source
    assert "defaultTtl" in source
    assert "ttlFromRetention" in source
    assert "disableLocalAuth: true" in source
    assert "00000000-0000-0000-0000-000000000002" in source  # Built-in Data Contributor


def test_storage_template_disables_shared_keys() -> None:
    storage = [p for p in BICEP_FILES if "Microsoft.Storage/storageAccounts" in p.read_text()]
    assert storage
    assert any("allowSharedKeyAccess: false" in p.read_text() for p in storage)


def test_deployed_literal_values_parse_with_the_settings_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from devtools.host.timers import Schedule
    from shared.platform.settings import AppSettings

    ((_, obj),) = app_settings_objects()
    literals = {
        name: string_value(value)
        for name, value in object_entries(obj).items()
        if value.type == "string" and "${" not in text(value) and name not in PLATFORM_SETTINGS
    }
    assert len(literals) >= 25
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AOC_LOCAL_SETTINGS_FILE", "/nonexistent/local.settings.json")
    for name, value in literals.items():
        monkeypatch.setenv(name, value)

    settings = AppSettings()
    assert settings.uses_storage_identity
    assert settings.queue_message_encoding == "base64"
    assert settings.poll_interval_seconds == 300
    Schedule(literals["POLL_SCHEDULE"])  # a valid 6-field NCRONTAB, as the timer binding needs
    Schedule(literals["GOVERNANCE_DISCOVERY_SCHEDULE"])
    assert literals["GOVERNANCE_DISCOVERY_SCHEDULE"] == settings.governance_discovery_schedule


def main_bicep_parameters() -> dict[str, bool]:
    """main.bicep's parameters, each with whether it is @secure()."""
    found = {}
    for node in walk(parse(INFRA / "main.bicep")):
        if node.type == "parameter_declaration":
            name = next(c for c in node.children if c.type == "identifier")
            decorators = node.prev_sibling
            secure = (
                decorators is not None and decorators.type == "decorators" and "@secure()" in text(decorators)
            )
            found[text(name)] = secure
    return found


def test_azd_parameters_map_every_plain_main_bicep_parameter_and_only_those() -> None:
    """`azd env set NAME value` reaches a parameter only through main.parameters.json."""
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = main_bicep_parameters()
    assert set(mapped) <= set(declared), f"mapped but not declared: {sorted(set(mapped) - set(declared))}"
    internal = {"resourceGroupName", "keyVaultSoftDeleteRetentionInDays", "keyVaultEnablePurgeProtection"}
    secrets_mapped_on_purpose = {"alertChannels"}
    unmapped = {name for name, secure in declared.items() if not secure} - set(mapped) - internal
    assert not unmapped, f"plain parameters azd cannot set: {sorted(unmapped)}"
    assert {name for name, secure in declared.items() if secure} & set(mapped) == secrets_mapped_on_purpose


def _parameter_decorators(path: Path, name: str) -> tuple[str, Node]:
    """The decorators text and the declaration of parameter `name` in `path`."""
    for node in walk(parse(path)):
        if node.type == "parameter_declaration":
            identifier = next(c for c in node.children if c.type == "identifier")
            if text(identifier) == name:
                decorators = node.prev_sibling
                found = decorators is not None and decorators.type == "decorators"
                return (text(decorators) if decorators is not None and found else ""), node
    raise AssertionError(f"{path.name} declares no parameter {name}")


@pytest.mark.parametrize(
    "path", [INFRA / "main.bicep", INFRA / "app" / "function.bicep"], ids=lambda p: p.name
)
def test_the_deployment_never_runs_the_api_in_swa_mode(path: Path) -> None:
    """A Flex Consumption app cannot be a Static Web App's linked backend, so nothing would stand in
    front of it to set x-ms-client-principal: SWA mode is not an allowed value anywhere."""
    decorators, declaration = _parameter_decorators(path, "apiAuthMode")
    allowed = re.search(r"@allowed\(\[(.*?)\]\)", decorators, re.S)
    assert allowed is not None, f"{path.name}: apiAuthMode has no @allowed list"
    assert re.findall(r"'([^']*)'", allowed.group(1)) == ["keys", "entra"]
    assert string_value(declaration.children[-1]) == "keys"


def test_azd_defaults_the_api_to_keys_and_maps_the_entra_audience_pair() -> None:
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["apiAuthMode"]["value"] == "${API_AUTH_MODE=keys}"
    assert mapped["apiAudience"]["value"] == "${API_AUDIENCE}"
    assert mapped["apiClientId"]["value"] == "${API_CLIENT_ID}"


def test_no_template_fakes_the_platform_authentication_marker() -> None:
    """WEBSITE_AUTH_ENABLED is the platform's word that App Service authentication is on; the unsafe
    flag is for local development. Neither may be deployed as an app setting."""
    for path in [*BICEP_FILES, INFRA / "main.parameters.json"]:
        source = path.read_text()
        assert "WEBSITE_AUTH_ENABLED" not in source, path
        assert "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER" not in source, path


# --- Secrets, DevOps authentication and Cosmos DB sizing (issue 13, finding 9) ----------------------

KEY_VAULT_REFERENCE = re.compile(
    r"@Microsoft\.KeyVault\(VaultName=\$\{keyVaultName\};SecretName=([a-z0-9-]+)\)"
)
# A reference may depend on the mode that reads the secret, never on whether this provision wrote it.
MODE_PARAMETERS = {"m365AuthMode", "m365CredentialType", "devopsAuthMode"}


def _declarations(path: Path, kind: str) -> dict[str, Node]:
    """`var` (kind "variable_declaration") or `param` declarations of `path`: name -> declaration."""
    found = {}
    for node in walk(parse(path)):
        if node.type == kind:
            found[text(next(c for c in node.children if c.type == "identifier"))] = node
    return found


def _identifiers_outside_strings(node: Node) -> set[str]:
    if node.type == "string":
        return set()
    if node.type == "identifier":
        return {text(node)}
    return set().union(*(_identifiers_outside_strings(child) for child in node.children))


def _leaf_parameters(node: Node, variables: dict[str, Node]) -> set[str]:
    """The identifiers an expression depends on, with variables expanded to what they are built from."""
    leaves = set()
    for name in _identifiers_outside_strings(node):
        if name in variables:
            leaves |= _leaf_parameters(variables[name].children[-1], variables)
        else:
            leaves.add(name)
    return leaves


def test_every_key_vault_reference_names_a_secret_the_vault_template_can_write() -> None:
    ((_, obj),) = app_settings_objects()
    referenced = {
        name: KEY_VAULT_REFERENCE.findall(text(value))
        for name, value in object_entries(obj).items()
        if "@Microsoft.KeyVault(" in text(value)
    }
    assert all(len(secrets) == 1 for secrets in referenced.values()), referenced
    written = set()
    for node in walk(parse(INFRA / "app" / "keyvault.bicep")):
        if node.type == "resource_declaration" and "vaults/secrets@" in text(node):
            body = next(c for c in walk(node) if c.type == "object")  # also inside `= if (...) {}`
            written.add(string_value(object_entries(body)["name"]))
    assert {secrets[0] for secrets in referenced.values()} == written
    assert set(referenced) == {
        "M365_CLIENT_SECRET",
        "M365_CERTIFICATE_PEM",
        "DEVOPS_PAT",
        "ALERT_CHANNELS",
        "API_CONTINUATION_SECRET",
    }


def test_a_secret_that_can_be_set_later_is_referenced_whatever_this_provision_was_given() -> None:
    """A later `azd provision` without alertChannels must not reset ALERT_CHANNELS to ''."""
    path = INFRA / "app" / "function.bicep"
    variables = _declarations(path, "variable_declaration")
    ((_, obj),) = app_settings_objects()
    entries = object_entries(obj)
    for name in ("ALERT_CHANNELS", "API_CONTINUATION_SECRET"):
        assert entries[name].type == "string", f"{name} must always be its Key Vault reference"
        assert KEY_VAULT_REFERENCE.fullmatch(string_value(entries[name])), name
    for name, value in entries.items():
        if "@Microsoft.KeyVault(" in text(value):
            depends_on = _leaf_parameters(value, variables) - {"keyVaultName"}
            assert depends_on <= MODE_PARAMETERS, f"{name} depends on {sorted(depends_on - MODE_PARAMETERS)}"


def test_azure_devops_defaults_to_the_managed_identity_in_every_template() -> None:
    for path in (INFRA / "main.bicep", INFRA / "app" / "function.bicep"):
        declaration = _declarations(path, "parameter_declaration")["devopsAuthMode"]
        assert string_value(declaration.children[-1]) == "token", path.name
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["devopsAuthMode"]["value"] == "${DEVOPS_AUTH_MODE=token}"


def _evaluate(node: Node, scope: dict[str, int]) -> object:
    """The few Bicep expressions the autoscale check uses: int literals, params, % == ?: and fail()."""
    if node.type == "parenthesized_expression":
        return _evaluate(node.children[1], scope)
    if node.type == "number":
        return int(text(node))
    if node.type == "identifier":
        return scope[text(node)]
    if node.type == "binary_expression":
        left, operator, right = node.children
        a, b = _evaluate(left, scope), _evaluate(right, scope)
        assert isinstance(a, int)
        assert isinstance(b, int)
        return {"%": lambda: a % b, "==": lambda: a == b, "!=": lambda: a != b}[text(operator)]()
    if node.type == "ternary_expression":
        condition, _, then, _, otherwise = node.children
        return _evaluate(then if _evaluate(condition, scope) else otherwise, scope)
    if node.type == "call_expression" and text(node.children[0]) == "fail":
        raise ValueError(string_value(node.children[1].children[1]))
    raise AssertionError(f"unexpected expression {node.type}: {text(node)}")


@pytest.mark.parametrize("throughput", [1000, 2000, 4000, 10_000, 1_000_000])
def test_an_autoscale_maximum_in_steps_of_1000_deploys(throughput: int) -> None:
    cosmos = INFRA / "app" / "cosmos.bicep"
    validated = _declarations(cosmos, "variable_declaration")["validatedAutoscaleMaxThroughput"]
    assert _evaluate(validated.children[-1], {"autoscaleMaxThroughput": throughput}) == throughput


@pytest.mark.parametrize("throughput", [1500, 2500, 4001, 999_999])
def test_an_autoscale_maximum_off_the_1000_steps_stops_the_deployment(throughput: int) -> None:
    cosmos = INFRA / "app" / "cosmos.bicep"
    validated = _declarations(cosmos, "variable_declaration")["validatedAutoscaleMaxThroughput"]
    with pytest.raises(ValueError, match="must be a multiple of 1000"):
        _evaluate(validated.children[-1], {"autoscaleMaxThroughput": throughput})


def test_the_database_takes_only_the_validated_autoscale_maximum_within_cosmos_limits() -> None:
    cosmos = INFRA / "app" / "cosmos.bicep"
    source = cosmos.read_text()
    assert "maxThroughput: validatedAutoscaleMaxThroughput" in source
    assert source.count("autoscaleMaxThroughput }") == 0
    for path, name in (
        (cosmos, "autoscaleMaxThroughput"),
        (INFRA / "main.bicep", "cosmosAutoscaleMaxThroughput"),
    ):
        decorators = _declarations(path, "parameter_declaration")[name].prev_sibling
        assert decorators is not None
        assert "@minValue(1000)" in text(decorators)
        assert "@maxValue(1000000)" in text(decorators)


# --- The admin console: Static Web App, CORS, azd service, config.json (issue 16) -------------------

SWA_TEMPLATE = INFRA / "app" / "staticwebapp.bicep"
CONSOLE_CONFIG_SCRIPT = INFRA / "scripts" / "console_config.py"


def _azure_yaml() -> dict[str, object]:
    import yaml

    loaded = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _allowed(path: Path, name: str) -> list[str]:
    decorators, _ = _parameter_decorators(path, name)
    allowed = re.search(r"@allowed\(\[(.*?)\]\)", decorators, re.S)
    assert allowed is not None, f"{path.name}: {name} has no @allowed list"
    return re.findall(r"'([^']*)'", allowed.group(1))


def _outputs(path: Path) -> dict[str, str]:
    found = {}
    for node in walk(parse(path)):
        if node.type == "output_declaration":
            identifiers = [c for c in node.children if c.type == "identifier"]
            found[text(identifiers[0])] = text(node.children[-1])
    return found


def _module_params(path: Path, module: str) -> dict[str, Node]:
    for node in walk(parse(path)):
        if node.type == "module_declaration" and text(node.children[1]) == module:
            body = next(c for c in node.children if c.type == "object")
            return object_entries(object_entries(body)["params"])
    raise AssertionError(f"{path.name} declares no module {module}")


def test_one_static_web_app_free_by_default_with_the_same_choices_everywhere() -> None:
    sites = [p for p in BICEP_FILES if "'Microsoft.Web/staticSites@" in p.read_text()]
    assert sites == [SWA_TEMPLATE]
    assert (
        _allowed(SWA_TEMPLATE, "sku")
        == _allowed(INFRA / "main.bicep", "staticWebAppSku")
        == ["Free", "Standard"]
    )
    assert string_value(_declarations(SWA_TEMPLATE, "parameter_declaration")["sku"].children[-1]) == "Free"
    main_sku = _declarations(INFRA / "main.bicep", "parameter_declaration")["staticWebAppSku"]
    assert string_value(main_sku.children[-1]) == "Free"
    assert _allowed(SWA_TEMPLATE, "location") == _allowed(INFRA / "main.bicep", "staticWebAppLocation")
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["staticWebAppSku"]["value"] == "${STATIC_WEB_APP_SKU=Free}"
    default_location = mapped["staticWebAppLocation"]["value"].removeprefix("${STATIC_WEB_APP_LOCATION=")[:-1]
    assert default_location in _allowed(SWA_TEMPLATE, "location")
    source = SWA_TEMPLATE.read_text()
    assert "sku: {\n    name: sku\n    tier: sku\n  }" in source
    # Free is chosen on purpose, and the template says why (README repeats it).
    assert "Free by default" in source
    assert "Standard" in source


def test_the_static_web_app_has_no_linked_backend_and_no_repository_build() -> None:
    """A Flex Consumption app cannot be a linked backend; the console calls the API with bearer tokens."""
    source = SWA_TEMPLATE.read_text()
    for forbidden in ("linkedBackends", "userProvidedFunctionApps", "repositoryUrl", "repositoryToken"):
        assert forbidden not in source, forbidden
    assert "provider: 'Custom'" in source
    assert "stagingEnvironmentPolicy: 'Disabled'" in source


def test_the_static_web_app_is_azds_web_service_and_deploys_the_built_console() -> None:
    services = _azure_yaml()["services"]
    assert isinstance(services, dict)
    web = services["web"]
    assert web["host"] == "staticwebapp"
    assert web["language"] == "js"
    assert (ROOT / web["project"] / "package.json").is_file()
    assert web["dist"] == "dist"
    assert 'outdir: join(WEB, "dist")' in (ROOT / web["project"] / "build.mjs").read_text()
    params = _module_params(INFRA / "main.bicep", "staticWebApp")
    assert string_value(params["serviceName"]) == "web"
    assert "'azd-service-name': serviceName" in SWA_TEMPLATE.read_text()
    assert set(services) == {"api", "web"}


def test_the_web_services_prepackage_hook_builds_and_writes_config_json() -> None:
    web = _azure_yaml()["services"]["web"]  # type: ignore[index]
    hook = web["hooks"]["prepackage"]
    for platform in ("posix", "windows"):
        run = hook[platform]["run"]
        assert "console_config.py --build" in run
        script = (ROOT / web["project"] / run.split()[1]).resolve()  # hooks run in the service's folder
        assert script == CONSOLE_CONFIG_SCRIPT.resolve()
        assert hook[platform]["continueOnError"] is False
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"


def test_the_apis_cors_list_always_holds_the_static_web_app_origin() -> None:
    params = _module_params(INFRA / "main.bicep", "functionApp")
    assert text(params["apiCorsOrigins"]) == "corsOrigins"
    cors = _declarations(INFRA / "main.bicep", "variable_declaration")["corsOrigins"].children[-1]
    assert cors.type == "ternary_expression"
    condition, _, then, _, otherwise = cors.children
    assert text(condition) == "empty(apiCorsOrigins)"
    assert text(then) == "staticWebApp.outputs.origin"
    assert string_value(otherwise) == "${staticWebApp.outputs.origin},${apiCorsOrigins}"
    assert _outputs(SWA_TEMPLATE)["origin"] == "'https://${site.properties.defaultHostname}'"
    # The function template passes it straight to the setting the app's CORS policy reads.
    ((_, obj),) = app_settings_objects()
    assert text(object_entries(obj)["API_CORS_ORIGINS"]) == "apiCorsOrigins"


def test_the_outputs_the_deploy_step_reads_exist() -> None:
    outputs = _outputs(INFRA / "main.bicep")
    assert outputs["SERVICE_WEB_URI"] == "staticWebApp.outputs.origin"
    assert outputs["SERVICE_WEB_NAME"] == "staticWebApp.outputs.name"
    assert outputs["SERVICE_API_URI"] == "functionApp.outputs.uri"
    assert outputs["CONSOLE_TENANT_ID"] == "effectiveTenantId"
    script = CONSOLE_CONFIG_SCRIPT.read_text()
    read = set(re.findall(r'get\("([A-Z0-9_]+)"\)', script))
    set_by_hand = {
        "CONSOLE_CLIENT_ID",
        "CONSOLE_SCOPES",
        "CONSOLE_AUTHORITY",
        "CONSOLE_API_BASE_URL",
        "API_AUDIENCE",
        "API_AUTH_MODE",
        "M365_CLOUD",
        "AZURE_TENANT_ID",
    }
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    azd_names = {re.sub(r"^\$\{([A-Z0-9_]+).*$", r"\1", p["value"]) for p in mapped.values()}
    assert read - set_by_hand <= set(outputs), sorted(read - set_by_hand - set(outputs))
    assert {"API_AUDIENCE", "API_AUTH_MODE", "M365_CLOUD"} <= azd_names


def test_console_settings_go_to_the_static_web_app_not_the_function_app() -> None:
    """CONSOLE_* settings are the console's: NOT_DEPLOYED to the Function App (the appSettings parity
    test then keeps them out of Bicep), and each one is read by the deploy step that writes config.json."""
    console = {name for name in setting_names() if name.startswith("CONSOLE_")}
    assert console == {"CONSOLE_CLIENT_ID", "CONSOLE_AUTHORITY", "CONSOLE_SCOPES"}
    assert console <= set(NOT_DEPLOYED)
    ((_, obj),) = app_settings_objects()
    assert not console & set(object_entries(obj))
    script = CONSOLE_CONFIG_SCRIPT.read_text()
    for name in console:
        assert f'get("{name}")' in script, name


# --- The deployed commit (AOC_COMMIT, GET /api/version) ---------------------------------------------


def test_every_function_template_parameter_is_given_by_main_bicep() -> None:
    """A function.bicep parameter main.bicep does not pass keeps its default in every deployment, so an
    app setting computed from it could never be set: main.bicep passes each one."""
    declared = set(_declarations(INFRA / "app" / "function.bicep", "parameter_declaration"))
    passed = set(_module_params(INFRA / "main.bicep", "functionApp"))
    assert declared - passed == set(), (
        f"function.bicep parameters main.bicep leaves at their default: {sorted(declared - passed)}"
    )
    assert passed - declared == set(), (
        f"passed but not declared by function.bicep: {sorted(passed - declared)}"
    )


def _max_length(path: Path, name: str) -> int:
    decorators, _ = _parameter_decorators(path, name)
    found = re.search(r"@maxLength\((\d+)\)", decorators)
    assert found is not None, f"{path.name}: {name} has no @maxLength"
    return int(found.group(1))


def test_the_deployed_commit_reaches_the_app_setting_from_the_azd_environment() -> None:
    """AOC_COMMIT (azd environment, set by azure.yaml's preprovision hook) -> main.parameters.json ->
    main.bicep aocCommit -> function.bicep aocCommit -> the AOC_COMMIT app setting."""
    from shared.platform.settings import AppSettings

    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["aocCommit"]["value"] == "${AOC_COMMIT}"
    for path in (INFRA / "main.bicep", INFRA / "app" / "function.bicep"):
        declaration = _declarations(path, "parameter_declaration")["aocCommit"]
        assert string_value(declaration.children[-1]) == "", f"{path.name}: aocCommit defaults to unknown"
    assert text(_module_params(INFRA / "main.bicep", "functionApp")["aocCommit"]) == "aocCommit"
    ((_, obj),) = app_settings_objects()
    assert text(object_entries(obj)["AOC_COMMIT"]) == "aocCommit"
    # Bicep refuses what the settings model would refuse at startup.
    model_limit = next(
        m.max_length for m in AppSettings.model_fields["commit"].metadata if hasattr(m, "max_length")
    )
    assert (
        _max_length(INFRA / "main.bicep", "aocCommit")
        == _max_length(INFRA / "app" / "function.bicep", "aocCommit")
        == model_limit
    )


def test_azd_records_the_commit_before_every_provision() -> None:
    """A project-level preprovision hook (so `azd provision` and `azd up` both run it) for each shell;
    tests/unit/test_azd_commit_hook.py runs the sh one."""
    hook = _azure_yaml()["hooks"]["preprovision"]  # type: ignore[index]
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"
    for platform in ("posix", "windows"):
        run = hook[platform]["run"]
        assert "git rev-parse --short HEAD" in run
        assert "azd env set AOC_COMMIT" in run
        assert hook[platform]["continueOnError"] is False
        assert hook[platform]["interactive"] is False


# --- Activity datasets: settings, the refresh timer, Log Analytics Reader (issue 19) ------------------

DATASET_SETTINGS = {
    "LOG_ANALYTICS_WORKSPACE_ID": "logAnalyticsWorkspaceId",
    "LOG_ANALYTICS_ENDPOINT": "logAnalyticsEndpoint",
    "LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS": "string(logAnalyticsServerTimeoutSeconds)",
    "DATASETS_REFRESH_PER_MINUTE": "string(datasetsRefreshPerMinute)",
    "DATASETS_REFRESH_SCHEDULE": "datasetsRefreshSchedule",
}
LOG_ANALYTICS_READER_ROLE = "73c42c96-874c-492b-b04d-ab87d138a893"  # built-in "Log Analytics Reader"


def test_the_dataset_settings_reach_the_app_from_azd_parameters() -> None:
    ((_, obj),) = app_settings_objects()
    entries = object_entries(obj)
    function_params = _declarations(INFRA / "app" / "function.bicep", "parameter_declaration")
    passed = _module_params(INFRA / "main.bicep", "functionApp")
    main_params = _declarations(INFRA / "main.bicep", "parameter_declaration")
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for setting, expression in DATASET_SETTINGS.items():
        assert text(entries[setting]) == expression, setting
        parameter = expression.removeprefix("string(").removesuffix(")")
        assert parameter in function_params, setting
        assert parameter in passed, setting
        assert parameter in main_params, setting
        assert mapped[parameter]["value"].startswith(f"${{{setting}"), setting
    # The workspace GUID is the one given, else the one read from the workspace the role is granted on.
    assert text(passed["logAnalyticsWorkspaceId"]) == "effectiveLogAnalyticsWorkspaceId"
    assert "logAnalyticsReader.outputs.customerId" in text(
        _declarations(INFRA / "main.bicep", "variable_declaration")["effectiveLogAnalyticsWorkspaceId"]
    )


def test_the_dataset_refresh_timer_is_off_by_default_and_its_schedule_is_valid() -> None:
    from devtools.host.timers import Schedule

    ((_, obj),) = app_settings_objects()
    switch = object_entries(obj)["AzureWebJobs.refresh_datasets.Disabled"]
    assert text(switch) == "datasetsRefreshTimerEnabled ? 'false' : 'true'"
    for path in (INFRA / "main.bicep", INFRA / "app" / "function.bicep"):
        params = _declarations(path, "parameter_declaration")
        assert text(params["datasetsRefreshTimerEnabled"].children[-1]) == "false", path.name
        Schedule(string_value(params["datasetsRefreshSchedule"].children[-1]))
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["datasetsRefreshTimerEnabled"]["value"] == "${DATASETS_REFRESH_TIMER_ENABLED=false}"
    # The function the switch names, on the schedule the setting holds; local settings keep it off too.
    timer = (ROOT / "datasets_timer" / "functions.py").read_text()
    assert '@bp.function_name("refresh_datasets")' in timer
    assert 'schedule="%DATASETS_REFRESH_SCHEDULE%"' in timer
    local = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert local["AzureWebJobs.refresh_datasets.Disabled"] == "true"
    Schedule(local["DATASETS_REFRESH_SCHEDULE"])


def test_log_analytics_reader_is_granted_to_the_app_identity_only_on_a_given_workspace() -> None:
    module = INFRA / "app" / "log-analytics-reader.bicep"
    source = module.read_text()
    assert f"logAnalyticsReaderRoleId = '{LOG_ANALYTICS_READER_ROLE}'" in source
    assert "scope: workspace" in source
    assert "principalType: 'ServicePrincipal'" in source
    assert "principalId: identityPrincipalId" in source
    assert "'Microsoft.OperationalInsights/workspaces@2023-09-01' existing" in source
    assert "customerId" in _outputs(module)
    declaration = next(
        node
        for node in walk(parse(INFRA / "main.bicep"))
        if node.type == "module_declaration" and text(node.children[1]) == "logAnalyticsReader"
    )
    assert "'app/log-analytics-reader.bicep'" in text(declaration)
    assert "if (!empty(logAnalyticsWorkspaceResourceId))" in text(declaration)
    assert "scope: resourceGroup(workspaceResourceIdParts[2], workspaceResourceIdParts[4])" in text(
        declaration
    )
    body = next(c for c in walk(declaration) if c.type == "object")  # inside `= if (...) { ... }`
    params = object_entries(object_entries(body)["params"])
    assert text(params["identityPrincipalId"]) == "appIdentity.outputs.principalId"
    assert text(params["workspaceName"]) == "last(workspaceResourceIdParts)"
    # No other template assigns that role.
    assert [p for p in BICEP_FILES if LOG_ANALYTICS_READER_ROLE in p.read_text()] == [module]


def test_the_dataset_containers_and_the_rate_limit_table_are_created_from_the_resource_file() -> None:
    assert {BlobContainers.DATASETS, BlobContainers.LOCKS} <= set(BlobContainers.ALL)
    assert Tables.REFRESH_RATE_LIMITS in Tables.ALL
    storage = INFRA / "app" / "storage.bicep"
    variables = _declarations(storage, "variable_declaration")
    assert text(variables["blobContainerNames"].children[-1]) == (
        "concat([deploymentContainerName], resources.blobContainers)"
    )
    source = storage.read_text()
    assert "for containerName in blobContainerNames:" in source
    assert "for tableName in resources.tables:" in source
