"""Freqtrade's config, rendered from a release: the mapping of docs/architecture.md §17, checked before use.

One function renders it (:func:`render_config`) for both a trading bot (the runtime, from the merged
runtime config of the pinned release) and a backtest (training, from tradai.yaml and the fresh models),
so what the comparator measured and what the bot runs differ only where they must (dry run, the
database, the time range). Exchange keys are never part of it: Freqtrade reads
``FREQTRADE__EXCHANGE__KEY`` / ``__SECRET`` from its own environment at start-up.

:func:`check_config` runs Freqtrade's own schema and consistency checks (offline) and a strict check
for keys the schema does not know, which Freqtrade would otherwise ignore silently: a misspelled
``stake_ammount`` must not fall back to a default with real money.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradai_release.bot.markets import EXCHANGE
from tradai_release.bot.pairs import FUTURES, parse_pairs
from tradai_release.core.errors import InputError

SECTION = "tradai"  # the same key as bot.strategy.SECTION; that module needs Freqtrade to import
KEY_VARIABLE = "FREQTRADE__EXCHANGE__KEY"
SECRET_VARIABLE = "FREQTRADE__EXCHANGE__SECRET"
API_PASSWORD_VARIABLE = "FREQTRADE__API_SERVER__PASSWORD"  # the bot's REST API password, read by Freqtrade
# Binance futures has no ticker pricing ("Ticker pricing not available for Binance"): price from the
# top of the order book, on the side that fills at once ("other": the ask for a long entry, the bid for
# its exit), as the backtest that judged the model assumes; "same" would rest at the bid and wait.
PRICING: dict[str, Any] = {"price_side": "other", "use_order_book": True, "order_book_top": 1}


@dataclass(frozen=True)
class BotRun:
    """What one Freqtrade process runs: the release's values, typed, before they become Freqtrade's JSON.

    ``where`` names the source in errors (the strategy's tradai.yaml, or the runtime config).
    """

    strategy: str
    class_name: str
    symbols: tuple[str, ...]
    timeframe: str
    stake_amount: Any  # as configured; checked to be a positive number when rendered
    max_open_trades: Any
    models_dir: Path  # <models_dir>/<strategy>: the verified directory
    entry_tag: str
    dry_run: bool
    db_url: str
    bot_name: str
    where: str = "tradai.yaml"
    exchange_url: str | None = None  # a stand-in's base URL; None = the exchange itself
    fee: float | None = None  # backtests: the fee ml_config.json states; None = the exchange's
    dry_run_wallet: float | None = None  # None = enough for max_open_trades stakes
    files_sha256: str = ""  # the verified files' digest: the strategy's version says it (REST show_config)
    api: ApiServer | None = None  # the REST API observe reads (a backtest has none)


@dataclass(frozen=True)
class ApiServer:
    """Freqtrade's REST API of a bot: where it listens and its user. The password and the JWT secret come
    from the environment (``FREQTRADE__API_SERVER__PASSWORD`` / ``__JWT_SECRET_KEY``), which Freqtrade
    reads over the file, so neither is ever written."""

    listen: str
    port: int
    username: str


def render_config(run: BotRun) -> dict[str, Any]:
    """The Freqtrade config of ``run``; bad values are an InputError naming the field."""
    pairs = parse_pairs(run.symbols, where=run.where, field="strategy_service.defaults.symbols")
    stake = _positive_number(run.stake_amount, run.where, "strategy_service.defaults.stake_amount")
    max_open = run.max_open_trades
    if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
        raise InputError(
            run.where, "strategy_service.defaults.max_open_trades", f"{max_open!r} is not a count >= 1"
        )
    exchange: dict[str, Any] = {
        "name": EXCHANGE,
        "key": "",
        "secret": "",
        "pair_whitelist": pairs.symbols,
        "pair_blacklist": [],
        "ccxt_config": {},
        "ccxt_async_config": {},
    }
    if run.exchange_url:
        from tradai_release.bot.standin import ccxt_config

        exchange["ccxt_config"] = ccxt_config(run.exchange_url)  # Freqtrade builds both clients from it
        exchange["enable_ws"] = False  # a stand-in speaks REST only
    config: dict[str, Any] = {
        "bot_name": run.bot_name,
        "strategy": run.class_name,
        "timeframe": run.timeframe,
        "stake_currency": pairs.stake_currency,
        "stake_amount": stake,
        "max_open_trades": max_open,
        "tradable_balance_ratio": 0.99,
        "dry_run": run.dry_run,
        "dry_run_wallet": run.dry_run_wallet if run.dry_run_wallet is not None else stake * max_open,
        "trading_mode": pairs.trading_mode,
        "cancel_open_orders_on_exit": False,
        "unfilledtimeout": {"entry": 10, "exit": 10, "exit_timeout_count": 0, "unit": "minutes"},
        "entry_pricing": {**PRICING, "price_last_balance": 0.0},
        "exit_pricing": dict(PRICING),
        "exchange": exchange,
        "pairlists": [{"method": "StaticPairList"}],
        "db_url": run.db_url,
        "initial_state": "running",
        "force_entry_enable": False,
        "internals": {"process_throttle_secs": 5},
        SECTION: {"models_dir": str(run.models_dir), "entry_tag": run.entry_tag},
    }
    if run.files_sha256:
        config[SECTION]["files_sha256"] = run.files_sha256
    if run.api is not None:
        config["api_server"] = {
            "enabled": True,
            "listen_ip_address": run.api.listen,
            "listen_port": run.api.port,
            "verbosity": "error",
            "jwt_secret_key": "",
            "ws_token": [],
            "CORS_origins": [],
            "username": run.api.username,
            "password": "",
        }
    if pairs.trading_mode == FUTURES:
        config["margin_mode"] = "isolated"
    if run.fee is not None:
        config["fee"] = run.fee
    return config


def _positive_number(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(where, field, f"{value!r} is not a positive number")
    return float(value)


def check_config(config: Mapping[str, Any], *, where: str, strategy_path: Path | None = None) -> None:
    """Freqtrade's own checks, offline, as its start-up runs them; then no key its schema does not declare.

    With ``strategy_path`` the strategy class is loaded from there first (Freqtrade merges the
    strategy's stop loss, ROI table and the like into the config before it checks it), so an entry
    point that does not resolve fails here. A failure is an InputError naming ``where`` (the rendered
    file) and the field. Needs Freqtrade.
    """
    import copy
    import logging

    from freqtrade.config_schema.config_schema import CONF_SCHEMA
    from freqtrade.configuration.config_validation import validate_config_consistency
    from freqtrade.enums import RunMode
    from freqtrade.exceptions import FreqtradeException

    unknown = unknown_keys(config, CONF_SCHEMA, allowed_top=(SECTION,))
    if unknown:
        raise InputError(where, unknown[0], "not a Freqtrade setting (its schema would ignore it silently)")
    document = copy.deepcopy(dict(config))  # Freqtrade's checks fill in defaults where they look
    document["runmode"] = RunMode.OTHER
    # Freqtrade logs a failed check at CRITICAL with the whole schema; the InputError is the one line.
    quiet = logging.getLogger("freqtrade")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        if strategy_path is not None:
            from freqtrade.resolvers import StrategyResolver

            document["strategy_path"] = str(strategy_path)
            # The resolver also searches <user_data_dir>/strategies; the strategy's folder has none.
            document["user_data_dir"] = Path(document.get("user_data_dir") or strategy_path)
            document["runmode"] = RunMode.DRY_RUN if config.get("dry_run", True) else RunMode.LIVE
            StrategyResolver.load_strategy(document)
        validate_config_consistency(document)  # ends with the schema check
    except FreqtradeException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(where, "(freqtrade)", first) from None
    finally:
        quiet.setLevel(level)


def unknown_keys(
    value: Any, schema: Mapping[str, Any], *, allowed_top: tuple[str, ...] = (), path: str = ""
) -> list[str]:
    """Dotted paths of the keys in ``value`` that ``schema`` (a Freqtrade-style JSON schema) does not declare.

    Objects the schema describes with ``properties`` are closed here; objects without are left open
    (Freqtrade passes ccxt's own options through those).
    """
    root = schema
    return _unknown(value, schema, root, path, allowed_top)


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _unknown(
    value: Any, node: Mapping[str, Any], root: Mapping[str, Any], path: str, allowed: tuple[str, ...]
) -> list[str]:
    node = _resolve(node, root)
    found: list[str] = []
    if isinstance(value, Mapping) and "properties" in node:
        properties = node["properties"]
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in properties:
                found += _unknown(item, properties[key], root, where, ())
            elif key not in allowed:
                found.append(where)
    elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
        for index, item in enumerate(value):
            found += _unknown(item, node["items"], root, f"{path}[{index}]", ())
    return found
