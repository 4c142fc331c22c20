"""The reports' pure helpers: spending shares and account trees, without a database."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finance.reports import trees
from finance.reports.service import share


def share_by_decimal(part: int, whole: int) -> str:
    with localcontext() as context:
        context.prec = 100
        quotient = Decimal(part) / Decimal(whole)
        return f"{quotient.quantize(Decimal('0.0001'), ROUND_HALF_EVEN):f}"


@pytest.mark.parametrize(
    ("part", "whole", "text"),
    [
        (1, 3, "0.3333"),
        (2, 3, "0.6667"),
        (-1, 3, "-0.3333"),
        (1, -3, "-0.3333"),
        (3, 3, "1.0000"),
        (5, 4, "1.2500"),
        (1, 20000, "0.0000"),  # 0.00005: a tie, to the even 0.0000
        (3, 20000, "0.0002"),  # 0.00015: a tie, to the even 0.0002
        (-1, 20000, "-0.0000"),  # rounds to zero and keeps its sign, as Decimal does
        (2**63 - 1, 1, "9223372036854775807.0000"),
    ],
)
def test_share(part: int, whole: int, text: str) -> None:
    assert share(part, whole) == text == share_by_decimal(part, whole)


@given(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(2**64), max_value=2**64).filter(lambda whole: whole != 0),
)
def test_share_matches_decimal(part: int, whole: int) -> None:
    assert share(part, whole) == share_by_decimal(part, whole)


def test_tree_keeps_the_given_amounts() -> None:
    """Nodes may hold the given amounts, but no total or fold ever writes into them."""
    lines = {
        "Expenses:Food:Groceries": [{"USD": 100}, {"USD": 5}],
        "Expenses:Food:Coffee": [{"USD": 20}, {}],
        "Expenses:Rent": [{"USD": 1000}, {"EUR": 7}],
    }
    before = {name: [dict(amounts) for amounts in columns] for name, columns in lines.items()}
    roots = trees.build(lines, 2, set(lines))
    assert {name: [dict(amounts) for amounts in cols] for name, cols in lines.items()} == before
    (expenses,) = roots
    assert expenses.implied
    assert [dict(amounts) for amounts in expenses.total] == [{"USD": 1120}, {"USD": 5, "EUR": 7}]
    food, rent = expenses.children
    assert [dict(amounts) for amounts in food.total] == [{"USD": 120}, {"USD": 5}]
    assert rent.total == rent.balance  # a leaf's total is its balance

    folded = trees.build(lines, 2, set(lines), depth=2)
    assert {name: [dict(amounts) for amounts in cols] for name, cols in lines.items()} == before
    (expenses,) = folded
    food, _ = expenses.children
    assert food.account == "Expenses:Food"
    assert not food.children
    assert [dict(amounts) for amounts in food.balance] == [{"USD": 120}, {"USD": 5}]


def test_tree_leaves_out_closed_accounts() -> None:
    roots = trees.build({"Assets:Old": [{"USD": 0}], "Assets:Bank": [{"USD": 3}]}, 1, set())
    (assets,) = roots
    assert [child.account for child in assets.children] == ["Assets:Bank"]
