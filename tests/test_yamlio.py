"""Safe loading: alias bombs, duplicate keys, size limit, line numbers; and ${VAR} interpolation."""

from __future__ import annotations

import time

import pytest

from helpers import BILLION_LAUGHS
from tradai_release.core.errors import InputError
from tradai_release.core.interpolate import interpolate, references
from tradai_release.core.yamlio import MAX_BYTES, load_json, load_yaml


def test_billion_laughs_fails_fast_with_one_line() -> None:
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        load_yaml(BILLION_LAUGHS.encode(), "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("bomb.yaml:")
    assert "alias bomb" in message


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(InputError, match="recursive alias"):
        load_yaml(b"a: &x [1, *x]\n", "r.yaml")


def test_moderate_aliases_are_fine() -> None:
    doc = load_yaml(b"base: &b {epochs: 10}\nquick: *b\n", "ok.yaml")
    assert doc.data == {"base": {"epochs": 10}, "quick": {"epochs": 10}}


def test_duplicate_key_names_line_and_key() -> None:
    with pytest.raises(InputError) as caught:
        load_yaml(b"strategy:\n  name: A\n  name: B\n", "dup.yaml")
    assert str(caught.value) == "dup.yaml:3: name: duplicate key (first defined on line 2)"


def test_malformed_yaml_names_line() -> None:
    with pytest.raises(InputError) as caught:
        load_yaml(b"a: 1\nb: [1, 2\nc: 3\n", "bad.yaml")
    assert str(caught.value).startswith("bad.yaml:3: (yaml): malformed YAML:")


def test_size_limit() -> None:
    with pytest.raises(InputError, match="over the"):
        load_yaml(b"a: " + b"x" * MAX_BYTES + b"\n", "big.yaml")
    with pytest.raises(InputError, match="over the 10-byte limit"):
        load_yaml(b"a: 12345678901\n", "big.yaml", max_bytes=10)


def test_unsafe_tags_refused() -> None:
    with pytest.raises(InputError, match="unsupported YAML tag"):
        load_yaml(b"a: !!python/object:os.system ls\n", "evil.yaml")
    with pytest.raises(InputError, match="unsupported YAML tag"):
        load_yaml(b"a: !!binary aGk=\n", "bin.yaml")


def test_values_stay_json() -> None:
    doc = load_yaml(b"d: 2024-01-01\nt: 20240101-20241201\nn: null\nok: true\n", "v.yaml")
    assert doc.data == {"d": "2024-01-01", "t": "20240101-20241201", "n": None, "ok": True}
    with pytest.raises(InputError, match="keys must be strings"):
        load_yaml(b"1: one\n", "k.yaml")
    with pytest.raises(InputError, match="not allowed"):
        load_yaml(b"x: .nan\n", "nan.yaml")


def test_empty_and_non_utf8() -> None:
    with pytest.raises(InputError, match="empty"):
        load_yaml(b"# only a comment\n", "e.yaml")
    with pytest.raises(InputError, match="UTF-8"):
        load_yaml(b"a: \xff\n", "x.yaml")


def test_line_of_field_paths() -> None:
    doc = load_yaml(b"# c\nstrategies:\n  A:\n    config: abc\n  B:\n    list: [1, 2]\n", "m.yaml")
    assert doc.line_of(["strategies", "B"]) == 5
    assert doc.line_of(["strategies", "A", "config"]) == 4
    assert doc.line_of(["strategies", "A", "missing"]) == 3  # nearest existing parent
    err = doc.error(["strategies", "B", "list", 1], "bad")
    assert str(err) == "m.yaml:6: strategies.B.list[1]: bad"


def test_json_strict() -> None:
    assert load_json(b'{"a": 1}', "c.json").data == {"a": 1}
    with pytest.raises(InputError, match=r"c\.json: a: duplicate key"):
        load_json(b'{"a": 1, "a": 2}', "c.json")
    with pytest.raises(InputError, match=r"c\.json:2: \(json\): malformed JSON"):
        load_json(b'{"a": 1,\n}', "c.json")
    with pytest.raises(InputError, match="NaN is not allowed"):
        load_json(b'{"a": NaN}', "c.json")


def test_interpolation_from_environ_with_defaults() -> None:
    data = {
        "mlflow": {"tracking_uri": "${MLFLOW_TRACKING_URI:-http://localhost:5001}"},
        "n": 3,
        "list": ["${A}-${B:-b}", "$${LITERAL}"],
    }
    assert interpolate(data, {"A": "a"}) == {
        "mlflow": {"tracking_uri": "http://localhost:5001"},
        "n": 3,
        "list": ["a-b", "${LITERAL}"],
    }
    assert interpolate(data, {"A": "a", "MLFLOW_TRACKING_URI": "http://mlflow:5000", "B": "x"})["list"] == [
        "a-x",
        "${LITERAL}",
    ]
    # An empty value falls back to the default, as in the shell.
    assert interpolate(data, {"A": "", "MLFLOW_TRACKING_URI": ""})["mlflow"]["tracking_uri"] == (
        "http://localhost:5001"
    )


def test_missing_variable_names_field() -> None:
    with pytest.raises(InputError) as caught:
        interpolate({"deployment": {"ecr": {"repository": "${ECR_REPO}"}}}, {}, "tradai.yaml")
    assert str(caught.value) == (
        "tradai.yaml: deployment.ecr.repository: environment variable ECR_REPO is not set and has no default"
    )


def test_malformed_reference() -> None:
    with pytest.raises(InputError, match="symbols\\[0\\]: malformed reference"):
        interpolate({"symbols": ["${BAD"]}, {}, "t.yaml")
    assert list(references({"a": ["${X:-1}", "${Y}"]})) == [("a[0]", "X", "1"), ("a[1]", "Y", None)]
