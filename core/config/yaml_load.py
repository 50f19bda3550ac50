"""Safe YAML for pipelines.yaml and key=value overrides: every problem is one ConfigError with its place.

PyYAML's SafeLoader on its own silently keeps the last of two equal keys; shares aliased nodes, so
nine levels of nine aliases ("billion laughs") load in a millisecond as a 9**9-item value that
pydantic and repr() later expand for minutes; builds self-referencing values (`&a [*a]`); and
overflows the stack on deeply nested brackets. This loader refuses all four.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.error import Mark
from yaml.reader import ReaderError

from camelid.errors import ConfigError

# Aliases are allowed up to a budget rather than refused outright: anchors and merge keys
# (`<<: *tiny`) are the usual YAML way to share settings between profiles and cost a few hundred
# nodes, while a bomb needs millions. The budget counts every node an alias re-uses (its subtree
# written out), so aliases can grow a document by at most this many nodes.
MAX_ALIAS_NODES = 10_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Place:
    """Formats where a problem is: `file:line:column`, or just the source name for one-line overrides."""

    def __init__(self, source: str, lines: bool):
        self.source, self.lines = source, lines

    def at(self, mark: Mark | None) -> str:
        if mark is None or not self.lines:
            return self.source
        return f"{self.source}:{mark.line + 1}:{mark.column + 1}"

    def line_note(self, mark: Mark) -> str:
        return f" (first set on line {mark.line + 1})" if self.lines else ""


class _BudgetLoader(yaml.SafeLoader):
    """SafeLoader that counts what aliases expand to while composing, and refuses recursive aliases."""

    def __init__(self, stream: str, place: _Place):
        super().__init__(stream)
        self.place = place
        self.expanded = 0  # nodes so far with every alias written out
        self.aliased = 0  # of those, nodes that came from aliases
        self.sizes: dict[int, int] = {}  # id(node) -> expanded size, once the node is complete

    def compose_node(self, parent, index):
        if not self.check_event(yaml.AliasEvent):
            before = self.expanded
            self.expanded += 1
            node = super().compose_node(parent, index)
            self.sizes[id(node)] = self.expanded - before
            return node
        event = self.peek_event()
        target = self.anchors.get(event.anchor)
        if target is not None:  # an undefined alias is left to PyYAML's own error
            size = self.sizes.get(id(target))
            if size is None:  # the anchored node is still being composed: it contains this alias
                raise ConfigError(f"{self.place.at(event.start_mark)}: alias *{event.anchor} refers to a value "
                                  "that contains it; config values cannot be recursive")
            self.aliased += size
            self.expanded += size
            if self.aliased > MAX_ALIAS_NODES:
                raise ConfigError(f"{self.place.at(event.start_mark)}: alias *{event.anchor} would expand past "
                                  f"{MAX_ALIAS_NODES} nodes (a YAML alias bomb?); write the values out "
                                  "or nest fewer aliases")
        return super().compose_node(parent, index)


def _check_duplicate_keys(root: yaml.Node, place: _Place) -> None:
    """Raise on the first mapping that sets one key twice (PyYAML would keep the last silently)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:  # iterative: nesting depth is already bounded by the composer, but stay off the stack
        node, path = stack.pop()
        if id(node) in seen:  # an aliased node is checked once, under the path where it is defined
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], Mark] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    name = f"{path}.{key.value}" if path else key.value
                    if (key.tag, key.value) in first:
                        raise ConfigError(f"{place.at(key.start_mark)}: duplicate key {name}"
                                          f"{place.line_note(first[key.tag, key.value])}; keep only one")
                    first[key.tag, key.value] = key.start_mark
                children.append((value, name if isinstance(key, yaml.ScalarNode) else f"{path}.?"))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack.extend(reversed(children))


def _yaml_error(err: yaml.YAMLError, text: str, place: _Place) -> ConfigError:
    if isinstance(err, ReaderError):  # a control character: PyYAML gives an offset, not a line
        line = text.count("\n", 0, err.position)
        mark = Mark(place.source, err.position, line, err.position - (text.rfind("\n", 0, err.position) + 1),
                    None, None)
        return ConfigError(f"{place.at(mark)}: invalid YAML: character U+{err.character:04X} is not allowed; "
                           "remove it")
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    if context and problem.startswith("but "):  # "expected a single document..., but found another document"
        problem = f"{context}, {problem}"
    return ConfigError(f"{place.at(getattr(err, 'problem_mark', None))}: invalid YAML: {problem}")


def load_yaml(text: str, source: str, *, lines: bool = True) -> Any:
    """Parse one YAML document safely; `source` names it in errors (`lines=False`: no line numbers)."""
    place = _Place(source, lines)
    try:
        loader = _BudgetLoader(text, place)  # the reader checks for control characters right here
    except yaml.YAMLError as e:
        raise _yaml_error(e, text, place) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicate_keys(node, place)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise _yaml_error(e, text, place) from None
    except RecursionError:
        raise ConfigError(f"{place.at(loader.get_mark())}: nested too deeply for a config file; "
                          "flatten the structure") from None
    finally:
        loader.dispose()
