"""Amazon ECS (or moto) for the deployment target: clusters, task definitions with tags, services.

The only module that talks to ECS; vendor errors become BackendError naming the cluster or
service. ``writes`` counts every mutating call, so a test can assert that a no-op apply made none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import BackendError
from tradai_release.stores.aws import client as make_client
from tradai_release.stores.aws import error_code

DESCRIBE_BATCH = 10
"""describe_services takes at most this many services per call."""


class EcsApi:
    """The ECS calls a deployment target makes, with batching and error translation."""

    def __init__(self, aws: AwsOptions | None = None, *, client: Any = None) -> None:
        self.aws = aws or AwsOptions()
        self._client = client
        self.writes: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.aws, "ecs", retries={"mode": "standard"})
        return self._client

    # --- reads -------------------------------------------------------------------------------------

    def cluster_exists(self, cluster: str) -> bool:
        response = self._read("describe_clusters", f"cluster {cluster}", clusters=[cluster])
        return any(c.get("status") == "ACTIVE" for c in response.get("clusters", []))

    def describe_services(self, cluster: str, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The live services among ``names`` (ACTIVE or DRAINING; missing ones are absent), 10 per call."""
        found: dict[str, dict[str, Any]] = {}
        for batch in _batches(list(names), DESCRIBE_BATCH):
            response = self._read(
                "describe_services", f"cluster {cluster}", cluster=cluster, services=batch, include=["TAGS"]
            )
            for service in response.get("services", []):
                if service.get("status") != "INACTIVE":
                    found[service["serviceName"]] = service
        return found

    def service_names(self, cluster: str) -> list[str]:
        """The name of every service of ``cluster`` (one call per 100 services)."""
        names: list[str] = []
        token: str | None = None
        while True:
            extra = {"nextToken": token} if token else {}
            response = self._read(
                "list_services", f"cluster {cluster}", cluster=cluster, maxResults=100, **extra
            )
            names += [str(arn).rsplit("/", 1)[-1] for arn in response.get("serviceArns", [])]
            token = response.get("nextToken")
            if not token:
                return sorted(names)

    def describe_task_definition(self, arn: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A task definition and its tags."""
        response = self._read(
            "describe_task_definition", f"task definition {arn}", taskDefinition=arn, include=["TAGS"]
        )
        return response["taskDefinition"], _tag_map(response.get("tags", []))

    def task_definition_arns(self, family: str, limit: int) -> list[str]:
        """The newest ``limit`` ACTIVE revisions of ``family``, newest first (one call up to 100)."""
        response = self._read(
            "list_task_definitions",
            f"task definition family {family}",
            familyPrefix=family,
            status="ACTIVE",
            sort="DESC",
            maxResults=max(1, min(limit, 100)),
        )
        # familyPrefix also matches longer family names (app-p1 vs app-p10): keep the exact family.
        return [arn for arn in response.get("taskDefinitionArns", []) if _family_of(arn) == family][:limit]

    # --- writes ------------------------------------------------------------------------------------

    def create_cluster(self, cluster: str) -> None:
        self._write("create_cluster", f"cluster {cluster}", clusterName=cluster)

    def register_task_definition(self, definition: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        """Register a revision; returns its ARN."""
        response = self._write(
            "register_task_definition",
            f"task definition family {definition.get('family')}",
            **dict(definition),
            tags=_tag_list(tags),
        )
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def create_service(self, cluster: str, service: str, **parameters: Any) -> dict[str, Any]:
        response = self._write(
            "create_service", f"service {service} in {cluster}", cluster=cluster, serviceName=service,
            **parameters,
        )
        return dict(response["service"])

    def update_service(self, cluster: str, service: str, **parameters: Any) -> dict[str, Any]:
        response = self._write(
            "update_service", f"service {service} in {cluster}", cluster=cluster, service=service,
            **parameters,
        )
        return dict(response["service"])

    def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        self._write("tag_resource", f"resource {arn}", resourceArn=arn, tags=_tag_list(tags))

    # --- calls -------------------------------------------------------------------------------------

    def _read(self, operation: str, what: str, **parameters: Any) -> dict[str, Any]:
        self.reads[operation] += 1
        return self._call(operation, what, parameters)

    def _write(self, operation: str, what: str, **parameters: Any) -> dict[str, Any]:
        self.writes[operation] += 1
        return self._call(operation, what, parameters)

    def _call(self, operation: str, what: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self.client, operation)(**parameters))
        except ClientError as err:
            detail = err.response.get("Error", {}).get("Message") or str(err)
            raise BackendError(f"ecs: {what}", f"{operation} failed ({error_code(err)}): {detail}") from None
        except BotoCoreError as err:
            raise BackendError(f"ecs: {what}", f"{operation} failed: {err}") from None


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _family_of(arn: str) -> str:
    """``family`` of ``arn:aws:ecs:...:task-definition/family:7``."""
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted(tags.items())]


def _tag_map(tags: Sequence[Mapping[str, str]]) -> dict[str, str]:
    return {str(tag["key"]): str(tag["value"]) for tag in tags}
