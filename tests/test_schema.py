"""JSON Schemas as data: the seed example validates verbatim; unknown keys and wrong types name file:line."""

from __future__ import annotations

import json

import pytest

from helpers import ML_CONFIG, SEED_TRADAI, TAG_SHA, manifest_yaml
from tradai_release.core.schema import SCHEMAS, check, load_schema
from tradai_release.core.yamlio import load_json, load_yaml
from tradai_release.repository.manifest import ReleaseManifest, check_manifest
from tradai_release.repository.strategy import FEATURE_CATALOGUE, MLConfig, check_ml_config, check_tradai


def tradai_problems(text: str, name: str = "MyStrategy") -> list[str]:
    doc = load_yaml(text.encode(), "strategies/MyStrategy/tradai.yaml")
    return [str(problem) for problem in check_tradai(name, doc)]


def test_schema_files_are_draft_2020_12_and_valid() -> None:
    from jsonschema import Draft202012Validator

    for name in SCHEMAS:
        schema = load_schema(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def test_seed_example_validates_verbatim() -> None:
    assert tradai_problems(SEED_TRADAI) == []


def test_retraining_section_is_optional() -> None:
    assert tradai_problems(SEED_TRADAI + "retraining:\n  max_age_days: 7\n") == []
    assert tradai_problems(SEED_TRADAI + "retraining:\n  max_age_days: 0\n") == [
        "strategies/MyStrategy/tradai.yaml:52: retraining.max_age_days: 0 is less than the minimum of 1"
    ]


def test_unknown_key_names_file_line_and_path() -> None:
    text = SEED_TRADAI.replace("  ecs:\n", "  ecs:\n    gpu: 1\n")
    assert tradai_problems(text) == [
        "strategies/MyStrategy/tradai.yaml:49: deployment.ecs.gpu: unknown key (allowed: cpu, memory)"
    ]
    top = tradai_problems(SEED_TRADAI + "extra: 1\n")
    assert top == [
        "strategies/MyStrategy/tradai.yaml:51: extra: unknown key (allowed: deployment, mlflow, "
        "optimization, retraining, strategy, strategy_service)"
    ]


def test_wrong_type_names_file_line_and_path() -> None:
    text = SEED_TRADAI.replace("max_open_trades: 3", "max_open_trades: three")
    assert tradai_problems(text) == [
        "strategies/MyStrategy/tradai.yaml:21: strategy_service.defaults.max_open_trades: expected integer, "
        'got string "three"'
    ]


def test_missing_section_and_bad_values() -> None:
    text = SEED_TRADAI.replace('  timeframe: "1h"\n', "")
    assert tradai_problems(text) == [
        "strategies/MyStrategy/tradai.yaml:1: strategy.timeframe: required key is missing"
    ]
    text = SEED_TRADAI.replace("spaces: [buy]", "spaces: [moon]")
    [problem] = tradai_problems(text)
    assert problem.startswith("strategies/MyStrategy/tradai.yaml:36: optimization.presets.quick.spaces[0]:")


def test_source_and_adapter_are_open_scalar_maps() -> None:
    text = SEED_TRADAI.replace(
        "    library: ohlcv\n", "    library: ohlcv\n    region: eu-west-1\n    retries: 3\n"
    )
    assert tradai_problems(text) == []
    nested = SEED_TRADAI.replace("    library: ohlcv\n", "    library:\n      name: ohlcv\n")
    [problem] = tradai_problems(nested)
    assert "strategy_service.adapter.library: expected string or number or boolean or null" in problem


def test_manifest_schema_and_typed_value() -> None:
    text = manifest_yaml("prod", 3, {"PascalStrategy": "a" * 64})
    doc = load_yaml(text.encode(), "releases/prod/profile-3.yaml")
    assert check_manifest("prod", 3, doc) == []
    manifest = ReleaseManifest.from_dict(doc.data, path="releases/prod/profile-3.yaml")
    assert manifest.artifacts.sha256 == TAG_SHA
    assert manifest.strategies["PascalStrategy"].model.production == 1
    assert ReleaseManifest.from_dict(manifest.to_dict(), manifest.path) == manifest


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("production: 1", "production: 0"), "strategies.PascalStrategy.model.production: 0 is less than"),
        (
            ("production: 1", "production: 1\n      stage: 2"),
            "strategies.PascalStrategy.model.stage: unknown key",
        ),
        (("environment: prod", "environment: Prod!"), 'environment: "Prod!" does not match'),
        (("environment: prod", "environment: qa"), "environment: 'qa' disagrees with the file's directory"),
        (("profile: 3", "profile: 0"), "profile: 0 is less than the minimum of 1"),
        (("profile: 3", "profile: 6"), "profile: 6 disagrees with the file name profile-3.yaml"),
        (("config: " + "a" * 64, "config: abc"), 'strategies.PascalStrategy.config: "abc" does not match'),
    ],
)
def test_manifest_schema_errors(edit: tuple[str, str], expected: str) -> None:
    text = manifest_yaml("prod", 3, {"PascalStrategy": "a" * 64}).replace(*edit)
    doc = load_yaml(text.encode(), "releases/prod/profile-3.yaml")
    problems = [str(problem) for problem in check_manifest("prod", 3, doc)]
    assert len(problems) == 1 and expected in problems[0], problems


def test_override_needs_who_and_why() -> None:
    text = manifest_yaml("prod", 3, {"PascalStrategy": "a" * 64}).replace(
        "production: 1", "production: 1\n      override:\n        approved_by: alice"
    )
    doc = load_yaml(text.encode(), "releases/prod/profile-3.yaml")
    [problem] = check("release", doc)
    assert problem.field == "strategies.PascalStrategy.model.override.reason"
    assert problem.reason == "required key is missing"


def test_ml_config_typed_and_catalogue() -> None:
    doc = load_json(json.dumps(ML_CONFIG).encode(), "ml_config.json")
    assert check_ml_config(doc) == []
    typed = MLConfig.from_dict(doc.data)
    assert typed.features == tuple(ML_CONFIG["features"])  # type: ignore[arg-type]
    assert typed.to_dict() == ML_CONFIG
    assert set(typed.features) <= set(FEATURE_CATALOGUE)
    duplicated = load_json(
        json.dumps(dict(ML_CONFIG, features=["ret_1", "ret_1"])).encode(), "ml_config.json"
    )
    [problem] = check_ml_config(duplicated)
    assert problem.field == "features"
