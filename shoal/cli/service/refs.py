"""``--secret``/``--config`` of ``service create`` and ``--secret-add|rm``/``--config-add|rm``
of ``service update``, as docker's ``ParseSecrets``/``ParseConfigs`` and ``getUpdated*``: the
client turns names into IDs by listing the objects (``name`` filter, a prefix match) and keeps
the exact matches, so a missing one fails before the service spec is sent."""

from __future__ import annotations

from typing import Any

from shoal.cli.app import App
from shoal.cli.errors import CliError
from shoal.cli.flagtypes import filter_query

__all__ = ["resolve_references", "updated_references"]


def resolve_references(
    app: App, kind: str, requested: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """References (`kind` ``secret`` or ``config``) with their IDs, in the order given."""
    if not requested:
        return []
    title = kind.capitalize()
    by_target: dict[str, dict[str, Any]] = {}
    for ref in requested:
        target = ref["File"]["Name"]
        if target in by_target:
            raise CliError(f"duplicate {kind} target for {ref[f'{title}Name']} not allowed")
        by_target[target] = ref
    names = list(dict.fromkeys(ref[f"{title}Name"] for ref in by_target.values()))
    found = {
        str(item.get("Spec", {}).get("Name", "")): str(item.get("ID", ""))
        for item in app.client.get(f"/{kind}s", filter_query({"name": names})) or []
    }
    resolved = []
    for ref in by_target.values():
        name = ref[f"{title}Name"]
        if name not in found:
            raise CliError(f"{kind} not found: {name}")
        resolved.append(
            {"File": dict(ref["File"]), f"{title}ID": found[name], f"{title}Name": name}
        )
    return resolved


def updated_references(
    app: App,
    kind: str,
    container: dict[str, Any],
    add: list[dict[str, Any]],
    remove: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The service's references without those named in `remove` (by source name, as docker),
    then the resolved `add` appended (docker does not merge them: a target in use is the
    server's to refuse)."""
    title = kind.capitalize()
    kept = []
    for ref in container.get(f"{title}s") or []:
        if ref.get("Runtime") is not None:
            # a credential spec's config: kept while the spec still names it (shoal has no
            # --credential-spec, so it is never replaced)
            credential = (container.get("Privileges") or {}).get("CredentialSpec") or {}
            if ref.get("ConfigID") == credential.get("Config"):
                kept.append(ref)
            continue
        if ref.get(f"{title}Name") not in remove:
            kept.append(ref)
    return kept + resolve_references(app, kind, add)
