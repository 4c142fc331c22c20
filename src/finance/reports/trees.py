"""Account trees from per-account sums: implied parents, depth folding, subtree totals."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

# Minor units per commodity code; a missing code is zero.
Amounts = dict[str, int]
# No amounts, shared by every cell that has none (it cannot be changed).
EMPTY: Mapping[str, int] = MappingProxyType({})


def add(target: dict[str, int], amounts: Mapping[str, int], sign: int = 1) -> dict[str, int]:
    for code, minor in amounts.items():
        target[code] = target.get(code, 0) + sign * minor
    return target


def total(items: Iterable[Mapping[str, int]]) -> Amounts:
    result: Amounts = {}
    for amounts in items:
        add(result, amounts)
    return result


def negate(amounts: Mapping[str, int]) -> Amounts:
    return {code: -minor for code, minor in amounts.items()}


def is_zero(amounts: Mapping[str, int]) -> bool:
    return all(minor == 0 for minor in amounts.values())


def truncate(name: str, depth: int | None) -> str:
    return name if depth is None else ":".join(name.split(":")[:depth])


def parent_of(name: str) -> str | None:
    head, colon, _ = name.rpartition(":")
    return head if colon else None


@dataclass
class Node:
    account: str
    implied: bool  # no account has this name: a parent implied by its children's paths
    # The account's own postings (and folded descendants'), per column; never changed.
    balance: Sequence[Mapping[str, int]]
    # The whole subtree, per column: the very `balance` of a node without children.
    total: Sequence[Mapping[str, int]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return self.account.count(":") + 1

    def walk(self) -> Iterable[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def build(
    lines: Mapping[str, Sequence[Mapping[str, int]]],
    columns: int,
    real: Collection[str],
    depth: int | None = None,
) -> list[Node]:
    """Roots of the tree of `lines` (account name -> amounts per column).

    Accounts deeper than `depth` fold into their ancestor at that depth. Nodes whose own
    amounts and subtree totals are zero in every column are left out (a closed account).
    The nodes may hold the given amounts themselves: none of them is changed, here or after.
    """
    own: dict[str, Sequence[Mapping[str, int]]] = {}
    for name, per_column in lines.items():
        key = truncate(name, depth)
        folded = own.get(key)
        own[key] = (
            per_column
            if folded is None
            else [add(dict(mine), theirs) for mine, theirs in zip(folded, per_column, strict=True)]
        )
    nodes: dict[str, Node] = {}
    for name in list(own):
        current: str | None = name
        while current is not None and current not in nodes:
            nodes[current] = Node(
                account=current,
                implied=current not in real,
                balance=own.get(current) or [EMPTY] * columns,
            )
            current = parent_of(current)
    roots: list[Node] = []
    for name in sorted(nodes):
        parent = parent_of(name)
        (nodes[parent].children if parent is not None else roots).append(nodes[name])
    return [root for root in roots if _settle(root)]


def _settle(node: Node) -> bool:
    """Fill in subtree totals bottom-up; False when the node has nothing to show."""
    node.children = [child for child in node.children if _settle(child)]
    if not node.children:
        node.total = node.balance
        return not all(is_zero(amounts) for amounts in node.balance)
    totals = [dict(amounts) for amounts in node.balance]
    for child in node.children:
        for target, amounts in zip(totals, child.total, strict=True):
            add(target, amounts)
    node.total = totals
    return True


def section_total(roots: Sequence[Node], columns: int) -> list[Amounts]:
    return [total(root.total[index] for root in roots) for index in range(columns)]
