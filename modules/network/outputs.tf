output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "Availability zones of the private subnets, in subnet order."
  value       = local.azs
}

output "private_subnet_ids" {
  description = "Private subnet ids, one per availability zone."
  value       = [for az in local.azs : aws_subnet.private[az].id]
}

output "private_route_table_ids" {
  description = "Route table ids of the private subnets (the gateway endpoints are attached to these)."
  value       = [for az in local.azs : aws_route_table.private[az].id]
}

output "public_subnet_ids" {
  description = "Public subnet ids (only with enable_nat_gateway, else empty)."
  value       = [for az, subnet in aws_subnet.public : subnet.id]
}

output "lambda_security_group_id" {
  description = "Security group for the functions: no ingress, egress 443 only."
  value       = aws_security_group.lambda.id
}

output "endpoint_security_group_id" {
  description = "Security group of the interface endpoints: ingress 443 from the functions only."
  value       = aws_security_group.endpoints.id
}

output "endpoint_ids" {
  description = "VPC endpoint ids by service short name (gateway and interface)."
  value = merge(
    { for service, endpoint in aws_vpc_endpoint.gateway : service => endpoint.id },
    { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id },
  )
}

output "nat_gateway_id" {
  description = "Id of the NAT gateway, or null when enable_nat_gateway is false."
  value       = try(aws_nat_gateway.this[0].id, null)
}

output "flow_log_group_name" {
  description = "CloudWatch log group receiving the VPC flow logs."
  value       = aws_cloudwatch_log_group.flow.name
}

output "flow_log_group_arn" {
  description = "ARN of the flow log group."
  value       = aws_cloudwatch_log_group.flow.arn
}
