"""Service principal governance (issue 18): what is read about a service principal, the validators that
check it, and the pure helpers remediation uses. Nothing here does I/O.

- `model`: `GovernedObject.from_graph(service_principal, application=..., owners=..., application_owners=...,
  app_role_assignments=..., resources=..., member_of=..., role_assignments=...)` from Graph v1.0 JSON;
  `model_dump(mode="json")` / `model_validate` to queue or store it.
- `config`: the validators file (`validators.yaml` ships; `load_default_validators()`,
  `load_validators(text, origin)`), validated at load like the rule file (`ValidatorConfigError.problems`).
- `validators`: `evaluate(obj, validator_set, now, directory=None) -> list[Finding]`.
- `notes`: the notes rule (`notes_problems`), `notes_from_owners`, `last_known_good_acceptable` and
  `plan_notes_remediation` (current, else last-known-good, else owners, else cannot remediate).
"""
