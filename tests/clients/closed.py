"""The served OpenAPI document with every object closed, for response checks.

Usage: closed.py IN OUT. Every schema with `properties` and no
`additionalProperties` of its own gets `additionalProperties: false`, so
that a member the server sends and the document does not name fails the
check (scripts/clients, scripts/schemathesis). Members that hold the
workflow's or a provider's own JSON say `additionalProperties: true` in
the document and stay open. The published document stays open: clients
must ignore members added later (docs/api.md#the-openapi-document).
"""

import json
import sys


def close(node):
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            close(value)
    elif isinstance(node, list):
        for value in node:
            close(value)
    return node


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        doc = json.load(f)
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(close(doc), f, indent=1)


if __name__ == "__main__":
    main()
