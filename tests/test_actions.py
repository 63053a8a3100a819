"""The action vocabulary: each kind's JSON form both ways, its lane key and phase, and older journals."""

from __future__ import annotations

import json

import pytest

from tradai_release.engine import actions as A
from tradai_release.engine.apply import phases

EXAMPLES: tuple[A.Action, ...] = (
    A.VerifyArtifacts(target="hub/t1", reason="r", tag="t1", sha256="a" * 64, profile_list=(1, 3)),
    A.UploadConfig(target="configs/S/abc", reason="r", strategy="S", config_hash="b" * 64,
                   object_key="configs/S/b.json"),
    A.CreateConfigVersion(target="S", reason="r", strategy="S", config_hash="b" * 64),
    A.ActivateConfig(target="S", reason="r", strategy="S", config_hash="b" * 64, config_id=None,
                     previous="cfg-1"),
    A.SetLifecycle(target="M/v2", reason="r", model="M", version=2, from_="None", to="Production",
                   tags={"lifecycle": "Production", "old": None}, stage="Production"),
    A.SetAlias(target="M@p3", reason="r", model="M", alias="p3", profile=3, version=2, previous=1),
    A.DeleteAlias(target="M@p3-staging", reason="r", model="M", alias="p3-staging", profile=3, version=None,
                  previous=4),
    A.ArchiveVersion(target="M/v1", reason="r", model="M", version=1, from_="Production", to="Archived",
                     tags={}, stage=None),
    A.WriteProfilePointer(target="dev/profile-3", reason="r", profile=3, tag="t1", sha256="a" * 64,
                          previous=("t0", "c" * 64)),
    A.DeployBot(target="dev/S-p3", reason="r", bot="S-p3", profile=3, strategy="S", deployed_on="ecs",
                content_sha256=None, config_hash="b" * 64, config_id=None, model="M", version=2, tag="t1",
                sha256="a" * 64, image=None, previous="arn:task/1"),
    A.WaitRollout(target="dev/ecs", reason="r", bots=("S-p3", "T-p3")),
    A.RetireBot(target="dev/S-p5", reason="r", bot="S-p5", profile=5, strategy="S", deployed_on="env-file",
                revision="rev", where="/bots/S-p5.env"),
    A.RetireAlias(target="M@p5", reason="r", model="M", alias="p5", profile=5, version=None, previous=1),
    A.RetireVersion(target="M/v1", reason="r", model="M", version=1, from_="Production", to="Archived",
                    tags={}, stage="Archived"),
    A.RetirePointer(target="dev/profile-5", reason="r", profile=5, tag="t1", sha256="a" * 64),
    A.RetireConfig(target="S", reason="r", strategy="S", config_hash="b" * 64, config_id="cfg-2"),
    A.RecordDeployment(target="dev", reason="r", commit="d" * 40, previous=None),
)


def test_every_kind_has_an_example_in_plan_order() -> None:
    assert [type(a) for a in EXAMPLES] == list(A.ACTION_TYPES.values())


@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.kind)
def test_the_json_form_reads_back_as_the_same_action(action: A.Action) -> None:
    data = json.loads(json.dumps(action.to_dict()))
    assert list(data)[:3] == ["kind", "target", "reason"] and data["kind"] == action.kind
    assert A.Action.from_dict(data) == action


def test_json_keys_keep_their_names() -> None:
    upload, lifecycle, verify = EXAMPLES[1].to_dict(), EXAMPLES[4].to_dict(), EXAMPLES[0].to_dict()
    assert upload["key"] == "configs/S/b.json" and "object_key" not in upload
    assert lifecycle["from"] == "None" and "from_" not in lifecycle
    assert verify["profiles"] == [1, 3]
    deploy = EXAMPLES[9].to_dict()
    assert deploy["target"] == "dev/S-p3" and deploy["deployed_on"] == "ecs"  # no longer overwritten


def test_a_deploy_bot_journaled_before_the_typed_actions_still_reads() -> None:
    old = {
        "kind": "deploy_bot", "target": "ecs", "reason": "r", "bot": "S-p3", "profile": 3, "strategy": "S",
        "content_sha256": None, "config_hash": "b" * 64, "config_id": None, "model": "M", "version": 2,
        "tag": "t1", "sha256": "a" * 64, "image": None, "previous": None,
    }
    action = A.Action.from_dict(old)
    assert isinstance(action, A.DeployBot) and action.deployed_on == "ecs" and action.bot == "S-p3"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(KeyError):
        A.Action.from_dict({"kind": "reboot_everything", "target": "x", "reason": ""})


def test_lane_keys_serialise_what_writes_one_thing() -> None:
    keys = {a.kind: a.key for a in EXAMPLES}
    assert keys["set_alias"] == keys["set_lifecycle"] == keys["archive_version"] == "model:M"
    assert keys["upload_config"] == keys["activate_config"] == keys["deploy_bot"] == "strategy:S"
    assert keys["write_profile_pointer"] == keys["verify_artifacts"] == "tag:t1"
    assert keys["record_deployment"] == "record_deployment:dev"


def test_profiles_and_retire_flags() -> None:
    assert EXAMPLES[0].profiles == (1, 3) and EXAMPLES[5].profiles == (3,) and EXAMPLES[16].profiles == ()
    assert [a.kind for a in EXAMPLES if a.retires] == [
        "retire_bot", "retire_alias", "retire_version", "retire_pointer", "retire_config",
    ]


def test_phases_cut_consecutive_actions_of_one_phase() -> None:
    cut = phases(EXAMPLES)
    assert [[a.kind for _, a in phase] for phase in cut][:5] == [
        ["verify_artifacts"], ["upload_config"], ["create_config_version"], ["activate_config"],
        ["set_lifecycle"],
    ]
    assert [i for phase in cut for i, _ in phase] == list(range(len(EXAMPLES)))
    assert all(len({a.phase for _, a in phase}) == 1 for phase in cut)
