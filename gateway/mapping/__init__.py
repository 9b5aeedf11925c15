"""Start-up stage 2: the mapping YAML -> which operations become tools, with which settings.

`load_mapping` reads and checks a file (every problem at file:line); `select_operations` applies it to an
API model; `scaffold_mapping` writes a commented starting file for any spec (`gateway init`).
The format is documented in docs/mapping.md; its JSON Schema is gateway/schemas/mapping.schema.json.
"""

from gateway.mapping.load import default_mapping, load_mapping
from gateway.mapping.model import (
    Defaults,
    ParameterSettings,
    ResponseSettings,
    SelectedOperation,
    Selection,
    SelectRule,
    ServerInfo,
    SummaryTemplate,
    ToolEntry,
    ToolMapping,
    ToolSettings,
    WidgetAction,
    WidgetKind,
    WidgetSettings,
)
from gateway.mapping.scaffold import scaffold_mapping
from gateway.mapping.select import select_operations

__all__ = [
    "Defaults",
    "ParameterSettings",
    "ResponseSettings",
    "SelectRule",
    "SelectedOperation",
    "Selection",
    "ServerInfo",
    "SummaryTemplate",
    "ToolEntry",
    "ToolMapping",
    "ToolSettings",
    "WidgetAction",
    "WidgetKind",
    "WidgetSettings",
    "default_mapping",
    "load_mapping",
    "scaffold_mapping",
    "select_operations",
]
