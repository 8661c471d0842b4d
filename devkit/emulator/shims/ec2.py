"""EC2: security-group rule descriptions and gateway-endpoint deletion as AWS behaves."""

from __future__ import annotations

import contextlib
from typing import Any

from moto.ec2.exceptions import InvalidRouteError
from moto.ec2.models.security_groups import SecurityGroupRule
from moto.ec2.models.vpcs import VPCBackend

from devkit.emulator.shims._base import ShimError, patch, require


def shim_ec2_security_group_rule_description() -> None:
    """moto 5.2.5's ``SecurityGroupRule.description`` reads only ``ip_range["Description"]``: the
    description of a rule that references a prefix list (``aws_vpc_security_group_egress_rule`` with
    ``prefix_list_id``, e.g. to the S3/DynamoDB gateway endpoints) or another security group
    (``referenced_security_group_id``) is dropped, so DescribeSecurityGroupRules returns none and the
    provider plans ``+ description`` forever. The shim keeps the description given with the prefix
    list or group reference and returns it.
    """
    original_init = require(SecurityGroupRule, "__init__")
    current = require(SecurityGroupRule, "description")
    if not isinstance(current, property) or current.fget is None:
        raise ShimError("moto.ec2 SecurityGroupRule.description is no longer a property")
    getter = current.fget

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # Positional layout of moto 5.2.5: (backend, protocol, group_id, from, to, ip_range,
        # source_group, prefix_list_id, ...).
        source_group = kwargs.get("source_group", args[6] if len(args) > 6 else None) or {}
        prefix_list = kwargs.get("prefix_list_id", args[7] if len(args) > 7 else None) or {}
        self.shim_reference_description = prefix_list.get("Description") or source_group.get("Description")

    def description(self: Any) -> str | None:
        own: str | None = getter(self)
        return own or getattr(self, "shim_reference_description", None)

    patch(SecurityGroupRule, "__init__", __init__)
    patch(SecurityGroupRule, "description", property(description))


def shim_ec2_gateway_endpoint_delete_without_its_route() -> None:
    """moto 5.2.5's ``DeleteVpcEndpoints`` removes a gateway endpoint's prefix-list route from each
    route table and answers ``InvalidRoute.NotFound`` when that route is already gone, leaving the
    endpoint in place (seen intermittently on ``terraform destroy`` of the e2e stack, when route
    changes and the two gateway endpoints' deletions are served concurrently). AWS removes the
    endpoint's routes itself and never fails the deletion over a route that no longer exists. The
    shim removes what routes remain, ignores missing ones, then lets moto mark the endpoint deleted.
    """
    original = require(VPCBackend, "delete_vpc_endpoints")

    def delete_vpc_endpoints(self: Any, vpce_ids: list[str] | None = None) -> None:
        for vpce_id in vpce_ids or []:
            endpoint = self.vpc_end_points.get(vpce_id)
            if endpoint is None or str(endpoint.vpc_endpoint_type).lower() == "interface":
                continue
            for route_table_id in list(endpoint.route_table_ids):
                # A route already gone is the end state AWS reaches too.
                with contextlib.suppress(InvalidRouteError):
                    self.delete_route(route_table_id, endpoint.destination_prefix_list_id)
            endpoint.route_table_ids = []
        original(self, vpce_ids)

    patch(VPCBackend, "delete_vpc_endpoints", delete_vpc_endpoints)
