"""Trading pairs as tradai.yaml writes them (ccxt's unified symbols), and what they mean for Freqtrade.

``BTC/USDT`` is a spot pair; ``BTC/USDT:USDT`` a linear perpetual settled in USDT, which Freqtrade
trades as futures on isolated margin. Freqtrade trades one market type per bot and stakes one
currency, so a strategy's symbols must agree on both; Freqtrade does not trade inverse contracts
(settled in the base currency), nor dated futures through a static pair list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tradai_release.core.errors import InputError

_SYMBOL = re.compile(r"^([A-Z0-9]{2,20})/([A-Z0-9]{2,20})(?::([A-Z0-9]{2,20}))?$")

SPOT = "spot"
FUTURES = "futures"


@dataclass(frozen=True)
class Pair:
    """One unified symbol, split."""

    symbol: str
    base: str
    quote: str
    settle: str | None  # None for spot

    @property
    def trading_mode(self) -> str:
        return FUTURES if self.settle else SPOT

    @property
    def file_stem(self) -> str:
        """How a data file names the pair: ``btc_usdt`` (lowercase base and quote)."""
        return f"{self.base}_{self.quote}".lower()


def parse_pair(symbol: str, *, where: str, field: str) -> Pair:
    """``symbol`` as a Pair Freqtrade can trade, or an InputError saying why not."""
    match = _SYMBOL.fullmatch(symbol.strip())
    if not match:
        raise InputError(
            where, field, f"{symbol!r} is not a pair like BTC/USDT (spot) or BTC/USDT:USDT (futures)"
        )
    base, quote, settle = match.groups()
    if base == quote:
        raise InputError(where, field, f"{symbol!r} trades a currency against itself")
    if settle is not None and settle != quote:
        raise InputError(
            where,
            field,
            f"{symbol!r} settles in {settle}, not its quote {quote}: Freqtrade trades linear contracts only",
        )
    return Pair(symbol=symbol.strip(), base=base, quote=quote, settle=settle)


@dataclass(frozen=True)
class PairSet:
    """A strategy's pairs: one trading mode and one stake currency."""

    pairs: tuple[Pair, ...]

    @property
    def trading_mode(self) -> str:
        return self.pairs[0].trading_mode

    @property
    def stake_currency(self) -> str:
        return self.pairs[0].quote

    @property
    def symbols(self) -> list[str]:
        return [pair.symbol for pair in self.pairs]

    def of_data_file(self, stem: str, *, where: str) -> Pair:
        """The pair a candles file ``<base>_<quote>_<timeframe>.csv`` holds (its stem given)."""
        for pair in self.pairs:
            if stem.lower().startswith(pair.file_stem + "_") or stem.lower() == pair.file_stem:
                return pair
        raise InputError(where, "(file)", f"names none of the strategy's symbols ({', '.join(self.symbols)})")


def parse_pairs(symbols: Sequence[str], *, where: str, field: str) -> PairSet:
    """The strategy's symbols as one PairSet; mixing spot and futures, or stake currencies, is an error."""
    if not symbols:
        raise InputError(where, field, "no symbols: a bot needs at least one pair")
    pairs = tuple(
        parse_pair(symbol, where=where, field=f"{field}[{index}]") for index, symbol in enumerate(symbols)
    )
    first = pairs[0]
    for index, pair in enumerate(pairs[1:], start=1):
        if pair.trading_mode != first.trading_mode:
            raise InputError(
                where,
                f"{field}[{index}]",
                f"{pair.symbol!r} is {pair.trading_mode}, {first.symbol!r} is "
                f"{first.trading_mode}: one bot trades one market type",
            )
        if pair.quote != first.quote:
            raise InputError(
                where,
                f"{field}[{index}]",
                f"{pair.symbol!r} is quoted in {pair.quote}, {first.symbol!r} in "
                f"{first.quote}: one bot stakes one currency",
            )
    if len({pair.symbol for pair in pairs}) != len(pairs):
        raise InputError(where, field, "a symbol is listed twice")
    return PairSet(pairs)
