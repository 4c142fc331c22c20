"""The balance rule of a transaction: weights, the inferred tolerance, the filled-in amount.

The rule, per commodity of weight:

* A posting's **weight** is its units x its per-unit cost when it has a cost, else its units x
  its per-unit price when it has a price, else its units. It is counted in the cost's (or the
  price's, or the units') commodity, its *weight commodity*.
* The weights of each weight commodity must **sum to zero**.
* Where every weight of a commodity is exact at that commodity's precision (2 decimals for USD),
  the sum must be exactly zero: `-50.00 USD` and `50.00 USD`; `10 ITOT {98.38 USD}` against
  `-983.80 USD`.
* Where a cost or a price makes a weight finer than that, the sum may be off by up to the
  **inferred tolerance**, after Beancount: half of the last decimal place of the amounts
  involved. That is the larger of half a minor unit of the weight commodity (0.005 USD), and,
  for each posting with a cost or price whose units commodity has decimals, half a minor unit of
  the units times the per-unit cost or price (a fund kept to 3 decimals bought at 12.345 USD a
  unit: 0.0005 x 12.345 = 0.0061725 USD). A commodity without decimals counts whole units,
  which are exact, so it widens nothing. So `10.125 FUND {12.345 USD}` (124.993125 USD) against
  `-124.99 USD` leaves 0.003125 USD and is accepted; against `-124.97 USD` it is 0.023125 USD
  off and refused.
* The transaction is stored as given: units, costs and prices exactly; each posting's weight
  rounded half-even to its commodity's precision. What is left over per commodity, exactly, is
  reported as the transaction's `residual`. Where rounding leaves the stored weights of a
  commodity a minor unit or so from zero, the difference is booked on the largest rounded
  weight, so stored weights always sum to exactly zero (and so does a trial balance).
* At most one posting may leave out its amount (and then may not have a cost or price). It is
  filled with whatever balances the others, rounded half-even to its commodity's precision. If
  it names no commodity, the others must leave exactly one commodity unbalanced (or be all in
  one commodity, already balanced: it is then filled with zero).

Tolerances follow the commodities' precisions rather than how many digits a client happened to
send, so a transaction read back and written again balances the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact

from finance.errors import Unprocessable
from finance.money import decimals_of, format_decimal

# Products of a 19-digit amount and a 38-digit rate, summed a thousand times, stay exact here;
# an inexact result would raise rather than round. The contexts are passed to each operation
# (not switched to): a transaction is checked without touching the thread's context.
_EXACT = Context(prec=120, traps=[Inexact])
_ROUNDING = Context(prec=120, rounding=ROUND_HALF_EVEN)
_HALF = Decimal("0.5")
_ZERO = Decimal(0)
_QUANTUM = [Decimal(1).scaleb(-precision) for precision in range(19)]


@dataclass(slots=True)  # not frozen: built for every posting checked, and frozen costs more
class Leg:
    """A posting's numbers, with the precisions of its commodities resolved."""

    units: Decimal | None  # None: the posting whose amount is filled in
    units_code: str | None  # None: left out together with the amount
    units_precision: int
    rate: Decimal | None  # the per-unit cost when there is one, else the price
    weight_code: str | None  # the rate's commodity, else the units'
    weight_precision: int


@dataclass(slots=True)
class Balanced:
    """The outcome of the rule: every posting's units and exact weight, and the residuals."""

    units: list[Decimal]
    weights: list[Decimal]
    fill_code: str | None  # the commodity given to the filled-in posting, if any
    fill_precision: int
    residual: dict[str, Decimal]  # per weight commodity, where not exactly zero


def show(value: Decimal, precision: int) -> str:
    """At least the commodity's decimals, and every decimal a cost or price brought."""
    return format_decimal(value, max(precision, decimals_of(value)))


def weigh(units: Decimal, rate: Decimal | None) -> Decimal:
    return units if rate is None else _EXACT.multiply(units, rate)


def round_half_even(value: Decimal, precision: int) -> Decimal:
    quantum = _QUANTUM[precision] if precision < len(_QUANTUM) else Decimal(1).scaleb(-precision)
    return value.quantize(quantum, context=_ROUNDING)


def half_unit(precision: int) -> Decimal:
    """Half of the last decimal place at this precision: 0.005 at 2."""
    return _HALF.scaleb(-precision, context=_EXACT)


def tolerance(legs: Sequence[Leg], weights: Sequence[Decimal], precision: int) -> Decimal:
    """How far from zero the weights of one commodity may sum (see the module's rule)."""
    if all(decimals_of(weight) <= precision for weight in weights):
        return Decimal(0)
    widest = half_unit(precision)
    for leg in legs:
        if leg.rate is not None and leg.units_precision > 0:
            widest = max(widest, _EXACT.multiply(half_unit(leg.units_precision), leg.rate))
    return widest


def _problem(
    message: str,
    loc: list[str | int],
    kind: str,
    imbalance: list[dict[str, object]] | None = None,
) -> Unprocessable:
    return Unprocessable(
        message,
        errors=[{"loc": ["body", *map(str, loc)], "msg": message, "type": kind}],
        imbalance=imbalance,
    )


def sum_by_commodity(weights: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Exact sums of (weight commodity, weight) pairs; zero sums are kept."""
    sums: dict[str, Decimal] = {}
    for code, weight in weights:
        sums[code] = _EXACT.add(sums.get(code, _ZERO), weight)
    return sums


def _sums(legs: Sequence[Leg], weights: Sequence[Decimal | None]) -> dict[str, Decimal]:
    return sum_by_commodity(
        (leg.weight_code, weight)
        for leg, weight in zip(legs, weights, strict=True)
        if weight is not None and leg.weight_code is not None
    )


def _fill(
    legs: Sequence[Leg], weights: list[Decimal | None], missing: int
) -> tuple[Decimal, str, int]:
    """The amount, commodity and precision of the posting left without an amount."""
    leg = legs[missing]
    sums = _sums(legs, weights)
    precisions = {other.weight_code: other.weight_precision for other in legs}
    if leg.units_code is not None:
        code, precision = leg.units_code, leg.units_precision
    else:
        open_codes = sorted(
            code for code, total in sums.items() if round_half_even(total, precisions[code]) != 0
        )
        if not open_codes and len(sums) == 1:
            open_codes = list(sums)  # balanced already, in one commodity: it is filled with 0
        if len(open_codes) != 1:
            left = ", ".join(f"{show(sums[code], precisions[code])} {code}" for code in open_codes)
            message = (
                f"postings[{missing}] has no amount, but the other postings leave "
                + (f"several commodities unbalanced ({left})" if left else "nothing to balance")
                + "; give its amount (or its commodity)"
            )
            raise _problem(message, ["postings", missing, "amount"], "cannot_fill")
        code = open_codes[0]
        precision = precisions[code]
    amount = _EXACT.minus(round_half_even(sums.get(code, Decimal(0)), precision))
    return amount, code, precision


def balance(legs: Sequence[Leg]) -> Balanced:
    """Apply the rule to a transaction's postings: fill the missing amount, check, report."""
    missing = [index for index, leg in enumerate(legs) if leg.units is None]
    if len(missing) > 1:
        message = (
            f"postings[{missing[0]}] and postings[{missing[1]}] both leave out the amount; "
            "at most one posting may"
        )
        raise _problem(message, ["postings", missing[1], "amount"], "several_missing")
    weights: list[Decimal | None] = [
        None if leg.units is None else weigh(leg.units, leg.rate) for leg in legs
    ]
    units = [leg.units for leg in legs]
    fill_code: str | None = None
    fill_precision = 0
    if missing:
        index = missing[0]
        if legs[index].rate is not None:
            message = (
                f"postings[{index}] has no amount, so it cannot have a cost or price; "
                "give its amount"
            )
            raise _problem(message, ["postings", index, "amount"], "cannot_fill")
        amount, fill_code, fill_precision = _fill(legs, weights, index)
        units[index] = weights[index] = amount
        legs = [
            *legs[:index],
            Leg(amount, fill_code, fill_precision, None, fill_code, fill_precision),
            *legs[index + 1 :],
        ]
    exact = [weight for weight in weights if weight is not None]
    assert len(exact) == len(legs)
    residual: dict[str, Decimal] = {}
    imbalance: list[dict[str, object]] = []
    described: list[str] = []
    for code, total in sorted(_sums(legs, exact).items()):
        if total == 0:
            continue
        members = [i for i, leg in enumerate(legs) if leg.weight_code == code]
        precision = legs[members[0]].weight_precision
        allowed = tolerance([legs[i] for i in members], [exact[i] for i in members], precision)
        residual[code] = total
        if abs(total) <= allowed:
            continue
        imbalance.append(
            {
                "commodity": code,
                "amount": show(total, precision),
                "tolerance": show(allowed, precision),
                "postings": members,
            }
        )
        which = "posting" if len(members) == 1 else "postings"
        described.append(
            f"the weights in {code} of {which} {', '.join(map(str, members))} sum to "
            f"{show(total, precision)} {code}"
            + (f", more than the tolerance of {show(allowed, precision)}" if allowed else "")
        )
    if imbalance:
        raise _problem(
            f"The transaction does not balance: {'; '.join(described)}",
            ["postings"],
            "unbalanced",
            imbalance=imbalance,
        )
    return Balanced(
        units=[u for u in units if u is not None],
        weights=exact,
        fill_code=fill_code,
        fill_precision=fill_precision,
        residual=residual,
    )
