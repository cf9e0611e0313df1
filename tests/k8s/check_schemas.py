#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check Kubernetes custom resources against the OpenAPI v3 schemas of their CRDs, offline.

    check_schemas.py --crd deploy/crds/mcp-authz.yaml FILE...
    check_schemas.py --crd deploy/crds/mcp-authz.yaml --crd-only

Resource mode: each FILE holds one or more custom resources (multi-document YAML). Each resource is
matched by `apiVersion` (group/version) and `kind` to a served version of a CRD in `--crd`, and is
validated against that version's `schema.openAPIV3Schema` with
`openapi_schema_validator.OAS30Validator` (which honours `nullable: true`, as kube-rs emits for
Option fields). What an OpenAPI v3 schema can say is checked (type, enum, required, pattern,
minLength, minimum, minItems, ...); `x-kubernetes-*` extensions are not (CEL rules in
`x-kubernetes-validations` are the API server's job, and are tested from Rust).

Unknown fields are reported by default, as `kubectl apply` (field validation "Strict") does:
every object schema with `properties` and neither `additionalProperties` nor
`x-kubernetes-preserve-unknown-fields: true` is closed, and `apiVersion`, `kind` and `metadata` are
always allowed at the top. `--allow-unknown-fields` turns this off (what the API server does with
field validation "Ignore": it prunes them silently).

CRD mode (`--crd-only`): validates every document of `--crd` as a Kubernetes object with
kubernetes-validate in strict mode (unknown fields in the CRD itself are errors), and checks that
each version's `openAPIV3Schema` is a well-formed OpenAPI 3.0 schema.

Output: exactly one JSON object per line on stdout,
    {"file": ..., "kind": ..., "valid": true|false, "errors": ["<path>: <message>", ...]}
per FILE (for a multi-document FILE, `kind` joins the kinds with "," and each error starts with
"<Kind>/<name>: "), or {"file": <crd>, "valid": ..., "errors": [...]} in CRD mode. The messages are
jsonschema's own (e.g. "'saml' is not one of ['oauth2', 'oidc']", "'key' is a required property",
"'Github' does not match '^...$'", "'' should be non-empty", "0 is less than the minimum of 1",
"'repo' is not of type 'array'"). A resource that cannot be matched to a CRD (unknown kind, wrong
group or version) is reported as invalid. The exit status is 0 whatever the verdicts; it is
non-zero only when the script itself cannot run (bad arguments, unreadable or unparsable --crd).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import Any, Iterable

import yaml
from jsonschema.exceptions import SchemaError
from openapi_schema_validator import OAS30Validator

ALWAYS_ALLOWED_TOP_LEVEL = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


def load_yaml_documents(path: str) -> list[Any]:
    """The non-empty documents of a (multi-document) YAML file."""
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def json_path(parts: Iterable[Any]) -> str:
    """`spec.authServer.upstreams[0].type` for a jsonschema error's absolute path."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def schema_for_validation(schema: Any, close_objects: bool, top: bool = True) -> Any:
    """A copy of a CRD's openAPIV3Schema without `x-kubernetes-*` keys.

    With `close_objects`, object schemas that list `properties` and say nothing about extra fields
    get `additionalProperties: false` (unless `x-kubernetes-preserve-unknown-fields: true`), so that
    unknown fields are reported; the top level, and embedded resources, always accept
    apiVersion/kind/metadata.
    """
    if isinstance(schema, list):
        return [schema_for_validation(s, close_objects, top=False) for s in schema]
    if not isinstance(schema, dict):
        return schema
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = schema.get("x-kubernetes-embedded-resource") is True
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties" and isinstance(value, dict):
            # Keys here are field names, not keywords: keep them all, recurse into each schema.
            out[key] = {
                name: schema_for_validation(sub, close_objects, top=False)
                for name, sub in value.items()
            }
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = schema_for_validation(value, close_objects, top=False)
        else:
            out[key] = copy.deepcopy(value)
    if close_objects and not preserve and isinstance(out.get("properties"), dict):
        if top or embedded:
            for name, sub in ALWAYS_ALLOWED_TOP_LEVEL.items():
                out["properties"].setdefault(name, sub)
        out.setdefault("additionalProperties", False)
    return out


class CrdIndex:
    """kind -> (group, {served version: openAPIV3Schema}) from a multi-document CRD file."""

    def __init__(self, documents: list[Any]):
        self.by_kind: dict[str, tuple[str, dict[str, Any]]] = {}
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            group = spec.get("group")
            versions: dict[str, Any] = {}
            for version in spec.get("versions") or []:
                if not version.get("served", False):
                    continue
                schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
                if schema is not None:
                    versions[version.get("name")] = schema
            if kind and group:
                self.by_kind[kind] = (group, versions)

    def schema_for(self, resource: Any) -> tuple[Any, str | None]:
        """(schema, None) or (None, why the resource matches no served CRD version)."""
        if not isinstance(resource, dict):
            return None, f"document is a {type(resource).__name__}, not a Kubernetes object"
        kind = resource.get("kind")
        api_version = resource.get("apiVersion")
        if kind not in self.by_kind:
            known = ", ".join(sorted(self.by_kind)) or "none"
            return None, f"unknown kind {kind!r} (the CRD file defines: {known})"
        group, versions = self.by_kind[kind]
        if not isinstance(api_version, str) or "/" not in api_version:
            return None, f"apiVersion {api_version!r} is not <group>/<version>"
        res_group, res_version = api_version.split("/", 1)
        if res_group != group:
            return None, f"apiVersion {api_version!r}: kind {kind} belongs to group {group!r}"
        if res_version not in versions:
            served = ", ".join(sorted(versions)) or "none"
            return None, (
                f"apiVersion {api_version!r}: version {res_version!r} of {kind} is not served "
                f"(served: {served})"
            )
        return versions[res_version], None


def validate_resource(resource: Any, schema: Any, close_objects: bool) -> list[str]:
    prepared = schema_for_validation(schema, close_objects)
    try:
        OAS30Validator.check_schema(prepared)
    except SchemaError as e:
        return [f"the CRD's openAPIV3Schema is not a valid OpenAPI 3.0 schema: {e.message}"]
    validator = OAS30Validator(prepared)
    errors = []
    for error in validator.iter_errors(resource):
        path = json_path(error.absolute_path)
        errors.append(f"{path}: {error.message}" if path else error.message)
    return sorted(errors)


def check_file(path: str, index: CrdIndex, close_objects: bool) -> dict[str, Any]:
    try:
        documents = load_yaml_documents(path)
    except (OSError, yaml.YAMLError) as e:
        return {"file": path, "kind": None, "valid": False, "errors": [f"cannot read: {e}"]}
    if not documents:
        return {"file": path, "kind": None, "valid": False, "errors": ["no YAML document"]}
    kinds = []
    errors: list[str] = []
    for doc in documents:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        kinds.append(str(kind))
        schema, why = index.schema_for(doc)
        doc_errors = [why] if why else validate_resource(doc, schema, close_objects)
        if len(documents) > 1:
            name = ((doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None)
            doc_errors = [f"{kind}/{name}: {e}" for e in doc_errors]
        errors.extend(doc_errors)
    kind_out = kinds[0] if len(kinds) == 1 else ",".join(kinds)
    return {"file": path, "kind": kind_out, "valid": not errors, "errors": errors}


def check_crd_file(path: str, documents: list[Any]) -> dict[str, Any]:
    import kubernetes_validate.utils as kv

    version = kv.latest_version()
    errors: list[str] = []
    crds = 0
    for i, doc in enumerate(documents):
        label = f"document {i}"
        if isinstance(doc, dict):
            label = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as e:
            where = json_path(e.path)
            errors.append(f"{label}: {where}: {e.message}" if where else f"{label}: {e.message}")
        except (kv.SchemaNotFoundError, kv.InvalidSchemaError, kv.VersionNotSupportedError) as e:
            errors.append(f"{label}: {e.message}")
        except Exception as e:  # e.g. a document without apiVersion or kind
            errors.append(f"{label}: cannot be validated: {e!r}")
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            crds += 1
            for v in (doc.get("spec") or {}).get("versions") or []:
                schema = (v.get("schema") or {}).get("openAPIV3Schema")
                if schema is None:
                    errors.append(f"{label}: version {v.get('name')!r} has no openAPIV3Schema")
                    continue
                try:
                    OAS30Validator.check_schema(schema_for_validation(schema, False))
                except SchemaError as e:
                    errors.append(
                        f"{label}: version {v.get('name')!r}: openAPIV3Schema is not a valid "
                        f"OpenAPI 3.0 schema: {e.message}"
                    )
    if crds == 0:
        errors.append("no CustomResourceDefinition in the file")
    return {
        "file": path,
        "valid": not errors,
        "errors": errors,
        "kubernetesVersion": version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate custom resources against the OpenAPI v3 schemas of their CRDs."
    )
    parser.add_argument("--crd", required=True, help="multi-document YAML file with the CRDs")
    parser.add_argument(
        "--crd-only",
        action="store_true",
        help="validate the CRD file itself (kubernetes-validate --strict) instead of resources",
    )
    parser.add_argument(
        "--allow-unknown-fields",
        action="store_true",
        help="do not report fields the schema does not define (default: report them)",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="resource YAML files")
    args = parser.parse_args(argv)
    if not args.crd_only and not args.files:
        parser.error("give at least one FILE, or --crd-only")
    if args.crd_only and args.files:
        parser.error("--crd-only takes no FILE")

    try:
        crd_documents = load_yaml_documents(args.crd)
    except (OSError, yaml.YAMLError) as e:
        print(f"check_schemas.py: cannot read --crd {args.crd}: {e}", file=sys.stderr)
        return 2

    if args.crd_only:
        print(json.dumps(check_crd_file(args.crd, crd_documents)), flush=True)
        return 0

    index = CrdIndex(crd_documents)
    if not index.by_kind:
        print(f"check_schemas.py: no CustomResourceDefinition in {args.crd}", file=sys.stderr)
        return 2
    for path in args.files:
        print(json.dumps(check_file(path, index, not args.allow_unknown_fields)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
