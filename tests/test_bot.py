"""The bot package: pairs, Freqtrade's rendered config and its checks, the market list, the ONNX models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT
from tradai_release.bot.config import (
    KEY_VARIABLE,
    BotRun,
    check_config,
    render_config,
    unknown_keys,
)
from tradai_release.bot.markets import listed_symbols
from tradai_release.bot.pairs import FUTURES, SPOT, parse_pair, parse_pairs
from tradai_release.core.errors import InputError

PASCAL_CODE = REPO_ROOT / "strategies" / "PascalStrategy" / "pascal"

RUN = BotRun(
    strategy="PascalStrategy",
    class_name="PascalStrategy",
    symbols=("BTC/USDT:USDT",),
    timeframe="1h",
    stake_amount=2500,
    max_open_trades=2,
    models_dir=Path("/srv/models/PascalStrategy"),
    entry_tag="PascalStrategy v2",
    dry_run=True,
    db_url="sqlite:////srv/run/trades.sqlite",
    bot_name="PascalStrategy-p3",
    where="runtime config",
)


# ------------------------------------------------------------------------------------------- pairs


def test_a_settled_symbol_is_futures_and_a_plain_one_spot() -> None:
    futures = parse_pair("BTC/USDT:USDT", where="f", field="s")
    assert (futures.base, futures.quote, futures.settle, futures.trading_mode) == (
        "BTC",
        "USDT",
        "USDT",
        FUTURES,
    )
    assert parse_pair("ETH/USDT", where="f", field="s").trading_mode == SPOT
    pairs = parse_pairs(["BTC/USDT:USDT", "ETH/USDT:USDT"], where="f", field="symbols")
    assert (pairs.trading_mode, pairs.stake_currency) == (FUTURES, "USDT")
    assert pairs.of_data_file("eth_usdt_1h", where="d.csv").symbol == "ETH/USDT:USDT"


@pytest.mark.parametrize(
    ("symbols", "field", "reason"),
    [
        (["BTC-USDT"], "symbols[0]", "not a pair like BTC/USDT"),
        (["BTC/USD:BTC"], "symbols[0]", "Freqtrade trades linear contracts only"),
        (["BTC/USDT:USDT", "ETH/USDT"], "symbols[1]", "one bot trades one market type"),
        (["BTC/USDT", "ETH/BUSD"], "symbols[1]", "one bot stakes one currency"),
        (["BTC/BTC"], "symbols[0]", "a currency against itself"),
        ([], "symbols", "no symbols"),
    ],
)
def test_a_symbol_freqtrade_cannot_trade_is_one_error(symbols: list[str], field: str, reason: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_pairs(symbols, where="tradai.yaml", field="symbols")
    assert (raised.value.file, raised.value.field) == ("tradai.yaml", field)
    assert reason in raised.value.reason


def test_a_data_file_must_name_one_of_the_symbols() -> None:
    pairs = parse_pairs(["BTC/USDT:USDT"], where="f", field="symbols")
    with pytest.raises(InputError, match="names none of the strategy's symbols"):
        pairs.of_data_file("sol_usdt_1h", where="strategies/X/data/sol_usdt_1h.csv")


def test_the_committed_market_list_lists_every_example_symbol() -> None:
    from tradai_release.repository.tree import ReleaseTree

    tree = ReleaseTree.work(REPO_ROOT)
    symbols = {
        symbol
        for name in tree.strategy_names()
        for symbol in tree.strategy(name).tradai["strategy_service"]["defaults"]["symbols"]
    }
    assert symbols <= listed_symbols()


# ------------------------------------------------------------------------------------- the mapping


def test_the_config_maps_the_release() -> None:
    config = render_config(RUN)
    assert config["strategy"] == "PascalStrategy" and config["timeframe"] == "1h"
    assert config["exchange"]["pair_whitelist"] == ["BTC/USDT:USDT"]
    assert (config["trading_mode"], config["margin_mode"], config["stake_currency"]) == (
        "futures",
        "isolated",
        "USDT",
    )
    assert (config["stake_amount"], config["max_open_trades"], config["dry_run_wallet"]) == (
        2500.0,
        2,
        5000.0,
    )
    assert config["dry_run"] is True
    # Binance futures has no ticker pricing: the top of the order book, on the side that fills.
    for side in ("entry_pricing", "exit_pricing"):
        assert config[side]["use_order_book"] is True and config[side]["order_book_top"] == 1
        assert config[side]["price_side"] == "other"
    assert config["tradai"] == {"models_dir": "/srv/models/PascalStrategy", "entry_tag": "PascalStrategy v2"}
    assert config["db_url"] == "sqlite:////srv/run/trades.sqlite"
    # No exchange key is ever part of it: Freqtrade reads them from its environment.
    assert config["exchange"]["key"] == config["exchange"]["secret"] == ""
    assert "enable_ws" not in config["exchange"] and config["exchange"]["ccxt_config"] == {}


def test_a_stand_in_exchange_is_reached_through_ccxts_urls_over_rest() -> None:
    config = render_config(replace(RUN, exchange_url="http://127.0.0.1:4567/"))
    api = config["exchange"]["ccxt_config"]["urls"]["api"]
    assert api["fapiPublic"] == "http://127.0.0.1:4567/fapi/v1"
    assert api["public"] == "http://127.0.0.1:4567/api/v3"
    assert all(url.startswith("http://127.0.0.1:4567/") for url in api.values() if isinstance(url, str))
    assert config["exchange"]["enable_ws"] is False


def test_a_spot_strategy_has_no_margin_mode() -> None:
    config = render_config(replace(RUN, symbols=("BTC/USDT", "ETH/USDT")))
    assert config["trading_mode"] == "spot" and "margin_mode" not in config


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stake_amount": "lots"}, "strategy_service.defaults.stake_amount"),
        ({"stake_amount": 0}, "strategy_service.defaults.stake_amount"),
        ({"stake_amount": True}, "strategy_service.defaults.stake_amount"),
        ({"max_open_trades": 0}, "strategy_service.defaults.max_open_trades"),
        ({"symbols": ("BTCUSDT",)}, "strategy_service.defaults.symbols[0]"),
    ],
)
def test_bad_trading_values_are_one_error_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as raised:
        render_config(replace(RUN, **change))
    assert (raised.value.file, raised.value.field) == ("runtime config", field)


# -------------------------------------------------------------------------------- Freqtrade's checks


def test_the_rendered_config_passes_freqtrades_own_checks() -> None:
    check_config(render_config(RUN), where="config.json")
    check_config(render_config(RUN), where="config.json", strategy_path=PASCAL_CODE)
    check_config(render_config(replace(RUN, dry_run=False)), where="config.json", strategy_path=PASCAL_CODE)


def test_a_misspelled_key_freqtrade_would_ignore_is_refused() -> None:
    config = render_config(RUN)
    config["stake_ammount"] = 100
    with pytest.raises(InputError) as raised:
        check_config(config, where="config.json")
    assert (raised.value.file, raised.value.field) == ("config.json", "stake_ammount")
    nested = render_config(RUN)
    nested["exchange"]["pair_whitlist"] = ["ETH/USDT:USDT"]
    nested["entry_pricing"]["use_order_bok"] = True
    assert unknown_keys_of(nested) == ["entry_pricing.use_order_bok", "exchange.pair_whitlist"]


def unknown_keys_of(config: dict[str, Any]) -> list[str]:
    from freqtrade.config_schema.config_schema import CONF_SCHEMA

    return sorted(unknown_keys(config, CONF_SCHEMA, allowed_top=("tradai",)))


def test_freqtrades_consistency_check_speaks_through_one_error() -> None:
    config = render_config(RUN)
    config["entry_pricing"]["use_order_book"] = False  # ticker pricing with a price side Freqtrade refuses
    config["entry_pricing"]["price_side"] = "sideways"
    with pytest.raises(InputError) as raised:
        check_config(config, where="config.json")
    assert raised.value.file == "config.json" and raised.value.field == "(freqtrade)"
    assert "sideways" in raised.value.reason and "\n" not in str(raised.value)


def test_an_entry_point_class_that_is_not_there_fails_the_check(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        check_config(
            render_config(replace(RUN, class_name="NoSuchStrategy")), where="c", strategy_path=PASCAL_CODE
        )
    assert "NoSuchStrategy" in raised.value.reason


def test_the_exchange_key_variables_are_freqtrades_own() -> None:
    # Freqtrade reads FREQTRADE__<SECTION>__<KEY> into its config at start-up; the key never sits in a file.
    import os

    from freqtrade.configuration.environment_vars import environment_vars_to_dict

    os.environ[KEY_VARIABLE] = "k-123"
    try:
        assert environment_vars_to_dict()["exchange"]["key"] == "k-123"
    finally:
        del os.environ[KEY_VARIABLE]


# -------------------------------------------------------------------------------------- the models


def test_models_that_are_not_there_are_one_error(tmp_path: Path) -> None:
    from tradai_release.bot.models import ReleasedModels

    with pytest.raises(InputError) as raised:
        ReleasedModels.load(tmp_path)
    assert raised.value.file == str(tmp_path / "model_compat.json")
    (tmp_path / "model_compat.json").write_text(
        json.dumps({"features": ["ret_1"], "onnx_input": {"name": "x"}})
    )
    with pytest.raises(InputError, match="features"):
        ReleasedModels.load(tmp_path, expected_features=["ret_3"])
    with pytest.raises(InputError) as raised:
        ReleasedModels.load(tmp_path)
    assert raised.value.file == str(tmp_path / "signal" / "ensemble_scaler.onnx")
