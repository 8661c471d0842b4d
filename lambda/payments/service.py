"""What the use cases touch: settings, the repository, the AWS clients and the parameter reader.

The use cases themselves: ``payments.intake`` (create a payment) and ``payments.steps``,
``payments.settle`` (the steps that carry it to a final status) and ``payments.recovery`` (the retry
consumer and the sweeper). ``Services`` is built
once per container by ``payments.handlers._runtime`` and passed to every use case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from payments import fraud
from payments.clock import Clock
from payments.config import Settings
from payments.processor import Processor, Transport, urllib_transport
from payments.store.repository import Repository

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sfn import SFNClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

RULES_MAX_AGE = 60


@dataclass
class Services:
    """Everything a use case touches, built once per container (see ``payments.handlers._runtime``)."""

    settings: Settings
    repo: Repository
    sqs: SQSClient
    sns: SNSClient
    s3: S3Client
    sfn: SFNClient
    get_parameter: Callable[..., Any]
    # How processor requests travel (HTTPS through urllib; the model test routes them in-process).
    processor_transport: Transport = urllib_transport
    # This actor's clock (every use case reads time through it).
    clock: Clock = field(default_factory=Clock)

    @property
    def processor(self) -> Processor:
        return Processor(
            self.get_parameter,
            self.settings.processor_endpoint_param,
            self.settings.processor_credentials_param,
            self.processor_transport,
        )

    def fraud_rules(self) -> fraud.FraudRules:
        raw = self.get_parameter(self.settings.fraud_rules_param, max_age=RULES_MAX_AGE, transform="json")
        return fraud.FraudRules.from_mapping(raw if isinstance(raw, Mapping) else None)
