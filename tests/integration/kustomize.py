"""The subset of kustomize that deploy/k8s uses, in pure Python, so tests render it offline.

kubectl's built-in kustomize is not on every machine the suite runs on, and Debian's
kubernetes-client is too old for `patches:`. What deploy/k8s uses — `resources` (files and
kustomization directories), `namespace`, `images`, `patches` by path (strategic merge,
lists of named items merged by `name`), `configMapGenerator` from files with
`disableNameSuffixHash` — is rendered here; anything else fails loudly. On a machine with
kubectl the output was checked equal to `kubectl kustomize` (docs/deploying.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
KNOWN = {
    "apiVersion", "kind", "resources", "namespace", "images", "patches",
    "configMapGenerator", "generatorOptions",
}  # fmt: skip


def render(directory: Path) -> list[Resource]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN
    assert not unknown, f"{directory}: kustomize fields this renderer lacks: {unknown}"
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(render(path))
        else:
            resources.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    resources.extend(_config_maps(directory, spec))
    for patch in spec.get("patches", []):
        assert set(patch) == {"path"}, f"only strategic-merge patches by path: {patch}"
        body = yaml.safe_load((directory / patch["path"]).read_text())
        target = _find(resources, body["kind"], body["metadata"]["name"])
        merged = _merge(target, body)
        resources[resources.index(target)] = merged
    for image in spec.get("images", []):
        for container in _containers(resources):
            name, _, _tag = container["image"].partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                container["image"] = f"{new_name}:{image.get('newTag', _tag)}"
    if "namespace" in spec:
        for resource in resources:
            resource["metadata"]["namespace"] = spec["namespace"]
    return resources


def _config_maps(directory: Path, spec: dict[str, Any]) -> list[Resource]:
    generators = spec.get("configMapGenerator", [])
    if generators:
        options = spec.get("generatorOptions", {})
        assert options.get("disableNameSuffixHash"), "name hashes are not rendered here"
    made = []
    for generator in generators:
        data = {Path(f).name: (directory / f).read_text() for f in generator["files"]}
        made.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}}
            | {"data": data}
        )
    return made


def _find(resources: list[Resource], kind: str, name: str) -> Resource:
    for resource in resources:
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    raise AssertionError(f"patch target {kind}/{name} not found")


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize does it for the fields used here."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if _named_list(base) and _named_list(patch):
        merged_list = list(base)
        for item in patch:
            names = [entry["name"] for entry in merged_list]
            if item["name"] in names:
                index = names.index(item["name"])
                merged_list[index] = _merge(merged_list[index], item)
            else:
                merged_list.append(item)
        return merged_list
    return patch


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _containers(resources: list[Resource]) -> list[dict[str, Any]]:
    return [
        container
        for resource in resources
        if resource["kind"] == "Deployment"
        for container in resource["spec"]["template"]["spec"]["containers"]
    ]
