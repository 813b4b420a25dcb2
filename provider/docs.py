"""Writes docs/ in the Terraform Registry layout from the schemas and examples/: `python -m provider.docs`."""

from __future__ import annotations

import sys
from pathlib import Path

from provider import schema as schema_module
from provider.schema import Attribute, BlockType, TypeSchema
from provider.types import cty_json

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
PROVIDER_NAME = "cloudbackup"


def _type_label(attribute: Attribute) -> str:
    kind = cty_json(attribute.kind)
    if isinstance(kind, str):
        return kind.capitalize()
    outer, inner = kind
    if isinstance(inner, list) and inner[0] == "object":
        return f"{outer.capitalize()} of Object"
    return f"{outer.capitalize()} of {str(inner).capitalize()}"


def _attribute_line(attribute: Attribute, anchor: str | None = None) -> str:
    extras = []
    if attribute.sensitive:
        extras.append("Sensitive")
    label = _type_label(attribute) + (", " + ", ".join(extras) if extras else "")
    text = attribute.description
    if attribute.has_default and attribute.settable:
        text += f" Defaults to `{attribute.default}`."
    if attribute.env:
        text += f" Environment variable: `{attribute.env}`."
    if attribute.force_new:
        text += " Changing it replaces the resource."
    if anchor:
        text += f" (see [below for nested schema](#{anchor}))"
    return f"- `{attribute.name}` ({label}) {text}"


def _block_line(block: BlockType, anchor: str) -> str:
    limits = []
    if block.min_items:
        limits.append(f"Min: {block.min_items}")
    if block.max_items:
        limits.append(f"Max: {block.max_items}")
    label = f"Block {block.nesting.capitalize()}" + (", " + ", ".join(limits) if limits else "")
    return f"- `{block.name}` ({label}) {block.description} (see [below for nested schema](#{anchor}))"


def _nested_object_section(attribute: Attribute, anchor: str) -> list[str]:
    inner = attribute.fragment.get("items", {}).get("properties", {})
    lines = [f'<a id="{anchor}"></a>', f"### Nested Schema for `{attribute.name}`", "", "Read-Only:", ""]
    for name, fragment in inner.items():
        sub = schema_module.Attribute(name, schema_module.tf_kind(fragment), fragment.get("description", ""))
        lines.append(_attribute_line(sub))
    return [*lines, ""]


def schema_section(schema: TypeSchema) -> list[str]:
    """The `## Schema` part: required, optional and read-only attributes, then nested blocks."""
    required = [a for a in schema.attributes if a.required]
    optional = [a for a in schema.attributes if a.optional]
    read_only = [a for a in schema.attributes if a.computed and not a.settable]
    lines = ["## Schema", ""]
    nested: list[str] = []
    blocks_by_group: dict[str, list[BlockType]] = {"required": [], "optional": []}
    for block in schema.blocks:
        blocks_by_group["required" if block.min_items else "optional"].append(block)
    for title, attributes, blocks in (
        ("Required", required, blocks_by_group["required"]),
        ("Optional", optional, blocks_by_group["optional"]),
        ("Read-Only", read_only, []),
    ):
        if not attributes and not blocks:
            continue
        lines += [f"### {title}", ""]
        entries: list[tuple[str, str]] = []
        for attribute in attributes:
            anchor = None
            if "items" in attribute.fragment and attribute.fragment["items"].get("properties"):
                anchor = f"nestedatt--{attribute.name}"
                nested += _nested_object_section(attribute, anchor)
            entries.append((attribute.name, _attribute_line(attribute, anchor)))
        for block in blocks:
            anchor = f"nestedblock--{block.name}"
            entries.append((block.name, _block_line(block, anchor)))
            nested += [f'<a id="{anchor}"></a>', f"### Nested Schema for `{block.name}`", ""]
            for sub_title, subs in (
                ("Required", [a for a in block.attributes if a.required]),
                ("Optional", [a for a in block.attributes if a.optional]),
            ):
                if subs:
                    nested += [f"{sub_title}:", "", *(_attribute_line(a) for a in subs), ""]
        lines += [line for _, line in sorted(entries)] + [""]
    return lines + nested


def _example(path: Path, language: str) -> list[str]:
    return [f"```{language}", path.read_text().rstrip("\n"), "```", ""]


def _front_matter(title: str, description: str) -> list[str]:
    return [
        "---",
        f'page_title: "{title}"',
        'subcategory: ""',
        "description: |-",
        f"  {description}",
        "---",
        "",
    ]


def resource_page(schema: TypeSchema) -> str:
    kind = "Resource" if schema.kind == "resource" else "Data Source"
    folder = EXAMPLES / ("resources" if schema.kind == "resource" else "data-sources") / schema.type_name
    lines = _front_matter(
        f"{schema.type_name} {kind} - terraform-provider-{PROVIDER_NAME}", schema.description
    )
    lines += [f"# {schema.type_name} ({kind})", "", schema.description, ""]
    example = folder / ("resource.tf" if schema.kind == "resource" else "data-source.tf")
    if example.exists():
        lines += ["## Example Usage", "", *_example(example, "terraform")]
    lines += schema_section(schema)
    if schema.kind == "resource":
        from provider.plugin import resource_classes

        lifecycle = resource_classes()[schema.type_name].lifecycle
        if lifecycle:
            lines += ["## Lifecycle", "", lifecycle, ""]
    import_script = folder / "import.sh"
    if import_script.exists():
        lines += [
            "## Import",
            "",
            f"Import is supported using the following syntax (the ID is `{schema.import_id}`):",
            "",
            *_example(import_script, "shell"),
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def index_page() -> str:
    schemas = schema_module.load()
    provider = schemas.provider
    lines = _front_matter(f"{PROVIDER_NAME} Provider", provider.description)
    lines += [
        f"# {PROVIDER_NAME} Provider",
        "",
        provider.description,
        "",
        "Cloud provider snapshots follow the Atlas rules: M10 or larger Azure replica sets only; the first "
        "backup "
        "method enabled in a project is the only one its other clusters may use; snapshots are stored in the "
        "cluster's preferred region, taken every 24 hours from the moment backup is enabled, and the last 3 "
        "scheduled ones are kept. `terraform plan` already refuses configurations that break these rules.",
        "",
        "## Example Usage",
        "",
        *_example(EXAMPLES / "provider" / "provider.tf", "terraform"),
        *schema_section(provider),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def pages() -> dict[Path, str]:
    """Every generated page, by its path under docs/."""
    schemas = schema_module.load()
    out = {Path("index.md"): index_page()}
    for name, schema in schemas.resources.items():
        out[Path("resources") / f"{name.removeprefix(PROVIDER_NAME + '_')}.md"] = resource_page(schema)
    for name, schema in schemas.data_sources.items():
        out[Path("data-sources") / f"{name.removeprefix(PROVIDER_NAME + '_')}.md"] = resource_page(schema)
    return out


def write(docs_dir: Path = DOCS) -> list[Path]:
    written = []
    for relative, text in pages().items():
        path = docs_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def main() -> int:
    for path in write():
        print(path)
    print(schema_module.write_provider_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
