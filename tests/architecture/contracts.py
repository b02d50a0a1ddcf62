"""A custom import-linter contract: resource packages stay apart.

A resource package is a package of `service` with a `module.py` (the registry's rule).
One may import another only through that package's `service` module, its public use
cases; never its servicer, converters, rules, repository, queries, models or tasks.
Checked on direct imports: what the service module imports in turn is its own business.
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output


class ResourceBoundaries(Contract):
    type_name = "resource_boundaries"

    root = fields.StringField()
    public = fields.StringField(required=False, default="service")

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        root = str(self.root)
        resources = {
            name.split(".")[1]
            for name in graph.modules
            if name.count(".") == 2 and name.startswith(f"{root}.") and name.endswith(".module")
        }
        public = str(self.public)
        violations: list[dict[str, Any]] = []
        for importer in sorted(graph.modules):
            owner = _resource(importer, root, resources)
            if owner is None:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                target = _resource(imported, root, resources)
                allowed = {f"{root}.{target}", f"{root}.{target}.{public}"}
                if target is None or target == owner or imported in allowed:
                    continue
                lines = graph.get_import_details(importer=importer, imported=imported)
                violations.append(
                    {
                        "importer": importer,
                        "imported": imported,
                        "lines": [d["line_number"] for d in lines],
                    }
                )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            lines = ", ".join(f"l.{n}" for n in violation["lines"])
            output.print_error(
                f"{violation['importer']} -> {violation['imported']} ({lines}): use "
                f"{'.'.join(violation['imported'].split('.')[:2])}.{self.public} instead",
                bold=False,
            )
            output.new_line()


def _resource(module: str, root: str, resources: set[str]) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == root and parts[1] in resources:
        return parts[1]
    return None
