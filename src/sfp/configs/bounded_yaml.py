"""YAML read safely and within bounds: aliases may not expand a document past :data:`MAX_VALUES` values, nesting may
not go deeper than :data:`MAX_DEPTH`, and no alias may refer to its own node. A "billion laughs" file (a few lines
whose aliases expand to 10**9 values) or a 5,000-deep one is refused in one line, before anything walks it."""

from __future__ import annotations

from typing import Any

import yaml

from sfp.errors import UserError

MAX_VALUES = 100_000  # every value counted each time an alias repeats it; shipped configs have a few hundred
MAX_DEPTH = 64


def load_bounded(text: str, origin: str) -> Any:
    """The YAML document in ``text`` (safe loader), or one line naming ``origin`` when it is not valid YAML or
    exceeds the bounds."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_bounds(node, origin)
        return loader.construct_document(node)
    except RecursionError:
        raise UserError(f"{origin}: nested deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as err:
        raise UserError(f"{origin}: not valid YAML ({str(err).splitlines()[0]})") from err
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_bounds(root: yaml.Node, origin: str) -> None:
    """Raise a UserError when the document under ``root`` expands to more than MAX_VALUES values, nests deeper than
    MAX_DEPTH, or holds an alias of an enclosing node. Each node is visited once (sizes are memoised), so the check
    costs the document's length, not its expansion."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            on_path.discard(id(node))
            children = _children(node)
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            depth[id(node)] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[id(node)] > MAX_VALUES:
                raise UserError(f"{origin}: expands to more than {MAX_VALUES:,} values (YAML aliases repeat nodes); "
                                "write it out or make it smaller")
            if depth[id(node)] > MAX_DEPTH:
                raise UserError(f"{origin}: nested deeper than {MAX_DEPTH} levels")
        elif id(child) in on_path:
            raise UserError(f"{origin}: a YAML alias refers to a node that contains it (an endless document)")
        elif id(child) not in size:
            if len(stack) > MAX_DEPTH:
                raise UserError(f"{origin}: nested deeper than {MAX_DEPTH} levels")
            on_path.add(id(child))
            stack.append((child, iter(_children(child))))
