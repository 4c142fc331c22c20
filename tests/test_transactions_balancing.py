"""The balance rule: weights by cost or price, the inferred tolerance, residuals, filling."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from finance.db import Database
from finance.errors import Unprocessable
from finance.transactions.balancing import Leg, balance, tolerance, weigh
from tests.books import Books, counts, open_books
from tests.conftest import AuthedUser, assert_problem

CASH = "Assets:Broker:Cash"
FUND = "Assets:Broker:Fund"
SHARES = "Assets:Broker:Shares"
GAINS = "Income:Gains"
CHF = "Assets:Swiss"
USD = "Assets:US"


async def _books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user, CASH, FUND, SHARES, GAINS, CHF, USD)
    await books.commodity("FUND", 3)
    await books.commodity("ITOT", 0)
    await books.commodity("VPMBX", 5)
    return books


def _weights(created: dict[str, object]) -> list[tuple[str, str]]:
    postings = created["postings"]
    assert isinstance(postings, list)
    return [(p["weight"]["amount"], p["weight"]["commodity"]) for p in postings]


async def test_a_fund_bought_at_three_decimals_may_leave_half_a_cent(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    # 2.100 x 10.050 = 21.105 USD against 21.10 paid: 0.005 USD is within the tolerance.
    created = await books.create(
        "2024-01-02",
        (FUND, "2.100", "FUND", {"cost": {"amount": "10.050", "commodity": "USD"}}),
        (CASH, "-21.10", "USD"),
    )
    assert created["residual"] == {"USD": "0.005"}
    # Stored as given; the weight is rounded half-even (21.105 -> 21.10, not 21.11).
    assert created["postings"][0]["cost"] == {"amount": "10.050", "commodity": "USD"}
    assert _weights(created) == [("21.10", "USD"), ("-21.10", "USD")]
    fetched = await books.get(f"/transactions/{created['id']}")
    assert fetched["residual"] == {"USD": "0.005"}

    by_price = await books.create(
        "2024-01-02",
        (FUND, "10.125", "FUND", {"price": {"amount": "12.345", "commodity": "USD"}}),
        (CASH, "-124.99", "USD"),
    )
    assert by_price["residual"] == {"USD": "0.003125"}


async def test_rounding_is_booked_so_that_stored_weights_sum_to_zero(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    # 1.000 x 12.3455 = 12.3455 USD rounds to 12.35, a cent from the 12.34 paid, though the
    # exact residual (0.0055) is within the tolerance (0.0005 x 12.3455): the cent is booked
    # on the fund's weight, so the stored weights balance exactly.
    created = await books.create(
        "2024-01-02",
        (FUND, "1.000", "FUND", {"cost": {"amount": "12.3455", "commodity": "USD"}}),
        (CASH, "-12.34", "USD"),
    )
    assert created["residual"] == {"USD": "0.0055"}
    assert _weights(created) == [("12.34", "USD"), ("-12.34", "USD")]


async def test_two_cents_off_is_refused_naming_the_postings_and_the_imbalance(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    before = await counts(database)
    response = await books.post(
        "2024-01-02",
        (FUND, "10.125", "FUND", {"cost": {"amount": "12.345", "commodity": "USD"}}),
        (CASH, "-124.97", "USD"),
    )
    body = assert_problem(response, 422)
    assert body["imbalance"] == [
        {"commodity": "USD", "amount": "0.023125", "tolerance": "0.0061725", "postings": [0, 1]}
    ]
    assert "0.023125 USD" in body["detail"]
    assert "postings 0, 1" in body["detail"]
    assert body["errors"][0]["type"] == "unbalanced"
    assert await counts(database) == before


async def test_exact_weights_must_sum_to_exactly_zero(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    response = await books.post(
        "2024-01-02",
        (SHARES, "10", "ITOT", {"cost": {"amount": "98.38", "commodity": "USD"}}),
        (CASH, "-983.79", "USD"),
    )
    body = assert_problem(response, 422)
    assert body["imbalance"][0]["amount"] == "0.01"
    assert body["imbalance"][0]["tolerance"] == "0.00"
    unbalanced = await books.post("2024-01-02", (CASH, "1.00", "USD"), (USD, "-0.99", "USD"))
    assert assert_problem(unbalanced, 422)["imbalance"][0]["amount"] == "0.01"


async def test_a_share_purchase_at_cost_and_its_sale_at_a_price(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    bought = await books.create(
        "2024-01-02",
        (SHARES, "10", "ITOT", {"cost": {"amount": "98.38", "commodity": "USD"}}),
        (CASH, None, None),
    )
    assert [(p["amount"], p["commodity"]) for p in bought["postings"]] == [
        ("10", "ITOT"),
        ("-983.80", "USD"),
    ]
    assert bought["residual"] == {}
    # Sold at 105.00: the lot weighs at its cost, the gain balances it; the price is kept.
    sold = await books.create(
        "2024-06-03",
        (
            SHARES,
            "-10",
            "ITOT",
            {
                "cost": {"amount": "98.38", "commodity": "USD"},
                "price": {"amount": "105.00", "commodity": "USD"},
            },
        ),
        (CASH, "1050.00", "USD"),
        (GAINS, None, None),
    )
    assert _weights(sold) == [("-983.80", "USD"), ("1050.00", "USD"), ("-66.20", "USD")]
    assert sold["postings"][0]["price"] == {"amount": "105.00", "commodity": "USD"}
    # A sale stated at its price only weighs at that price.
    at_price = await books.create(
        "2024-06-04",
        (SHARES, "-1", "ITOT", {"price": {"amount": "104.50", "commodity": "USD"}}),
        (CASH, "104.50", "USD"),
    )
    assert at_price["residual"] == {}
    balance = await books.get(f"/accounts/{books.id(SHARES)}/balance", as_of="2024-12-31")
    assert balance["balances"] == [{"amount": "-1", "commodity": "ITOT"}]


async def test_a_currency_exchange_at_a_rate_reports_its_residual(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    # Beancount's example: 9643.82 x 0.93324 = 8999.9985768 CHF against 9000.00 CHF.
    created = await books.create(
        "2015-05-01",
        (CHF, "-9000.00", "CHF"),
        (USD, "9643.82", "USD", {"price": {"amount": "0.93324", "commodity": "CHF"}}),
    )
    assert created["residual"] == {"CHF": "-0.0014232"}
    assert _weights(created) == [("-9000.00", "CHF"), ("9000.00", "CHF")]
    # The other way round the amount is filled in: 9643.82 x 0.93324, rounded to the cent.
    filled = await books.create(
        "2015-05-01",
        (CHF, None, None),
        (USD, "9643.82", "USD", {"price": {"amount": "0.93324", "commodity": "CHF"}}),
    )
    assert filled["postings"][0]["amount"] == "-9000.00"
    assert filled["residual"] == {"CHF": "-0.0014232"}


async def test_beancounts_mutual_fund_example_balances(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    created = await books.create(
        "2013-04-03",
        (FUND, "10.22626", "VPMBX", {"cost": {"amount": "37.61", "commodity": "USD"}}),
        (CASH, "-384.61", "USD"),
    )
    assert created["residual"] == {"USD": "-0.0003614"}


async def test_the_posting_without_an_amount_is_filled_rounded_half_even(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    created = await books.create(
        "2024-01-02",
        (FUND, "10.125", "FUND", {"cost": {"amount": "12.345", "commodity": "USD"}}),
        (CASH, None, "USD"),
    )
    assert created["postings"][1]["amount"] == "-124.99"
    assert created["residual"] == {"USD": "0.003125"}


async def test_a_balanced_single_commodity_fills_the_missing_amount_with_zero(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-01-02", (CASH, "0.00", "USD"), (USD, None, None))
    assert [(p["amount"], p["commodity"]) for p in created["postings"]] == [
        ("0.00", "USD"),
        ("0.00", "USD"),
    ]


async def test_rates_keep_their_own_decimals(client: httpx.AsyncClient, user: AuthedUser) -> None:
    books = await _books(client, user)
    rate = "1.08765432109876543210"
    created = await books.create(
        "2024-01-02",
        (USD, "1000.00", "USD", {"price": {"amount": rate, "commodity": "EUR"}}),
        (CASH, None, "EUR"),
    )
    assert created["postings"][0]["price"]["amount"] == rate
    assert created["postings"][1]["amount"] == "-1087.65"
    assert created["residual"] == {"EUR": "0.0043210987654321"}


@pytest.mark.parametrize(
    ("postings", "message"),
    [
        (
            [(CASH, None, None), (USD, None, None), (GAINS, "1.00", "USD")],
            "postings[0] and postings[1] both leave out the amount",
        ),
        (
            [(CASH, "1.00", "USD"), (CHF, "2.00", "CHF"), (USD, None, None)],
            "several commodities unbalanced (2.00 CHF, 1.00 USD)",
        ),
        (
            [
                (CASH, "1.00", "USD"),
                (USD, "-1.00", "USD"),
                (CHF, "2.00", "CHF"),
                (CHF, "-2.00", "CHF"),
                (GAINS, None, None),
            ],
            "postings[4] has no amount, but the other postings leave nothing to balance",
        ),
        (
            [
                (CASH, "1.00", "USD"),
                (SHARES, None, "ITOT", {"cost": {"amount": "1", "commodity": "USD"}}),
            ],
            "postings[1] has no amount, so it cannot have a cost or price",
        ),
        (
            [(CASH, "1.00", "USD"), (CHF, "-1.00", "CHF")],
            "the weights in CHF of posting 1 sum to -1.00 CHF; the weights in USD of posting 0 "
            "sum to 1.00 USD",
        ),
    ],
)
async def test_what_cannot_be_filled_or_balanced_is_refused_clearly(
    client: httpx.AsyncClient,
    user: AuthedUser,
    database: Database,
    postings: list[tuple[object, ...]],
    message: str,
) -> None:
    books = await _books(client, user)
    before = await counts(database)
    body = assert_problem(await books.post("2024-01-02", *postings), 422)
    assert message in body["detail"], body["detail"]
    assert await counts(database) == before


def test_tolerance_is_exact_zero_for_exact_weights_and_widens_with_rate_and_precision() -> None:
    fund = Leg(Decimal("2.100"), "FUND", 3, Decimal("10.050"), "USD", 2)
    cash = Leg(Decimal("-21.10"), "USD", 2, None, "USD", 2)
    exact = [weigh(Decimal("-21.10"), None), weigh(Decimal("21.10"), None)]
    assert tolerance([cash, cash], exact, 2) == 0
    weights = [weigh(Decimal("2.100"), Decimal("10.050")), Decimal("-21.10")]
    assert weights[0] == Decimal("21.105")
    assert tolerance([fund, cash], weights, 2) == Decimal("0.005025")
    # Whole units of a commodity without decimals widen nothing: half a cent it is.
    shares = Leg(Decimal("3"), "ITOT", 0, Decimal("33.3333"), "USD", 2)
    assert tolerance([shares, cash], [Decimal("99.9999"), Decimal("-100.00")], 2) == Decimal(
        "0.005"
    )


def test_balance_refuses_what_the_tolerance_does_not_cover() -> None:
    shares = Leg(Decimal("3"), "ITOT", 0, Decimal("33.3333"), "USD", 2)
    ok = balance([shares, Leg(Decimal("-100.00"), "USD", 2, None, "USD", 2)])
    assert ok.residual == {"USD": Decimal("-0.0001")}
    with pytest.raises(Unprocessable) as refused:
        balance([shares, Leg(Decimal("-100.01"), "USD", 2, None, "USD", 2)])
    assert "sum to -0.0101 USD, more than the tolerance of 0.005" in refused.value.detail
