variable "suffix" {
  description = "Environment suffix appended to every name (`payment-vpc-<suffix>`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.suffix))
    error_message = "suffix must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the VPC; builds the com.amazonaws.<region>.<service> endpoint names."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must look like an AWS region name, e.g. us-east-1."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC, /16 to /24. It is split into eighths: private subnets take the first az_count, public (NAT) subnets the upper half."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0)) &&
      can(regex("^[0-9.]+/[0-9]+$", var.vpc_cidr)) &&
      try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 24, false) &&
      try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr, false)
    )
    error_message = "vpc_cidr must be an IPv4 network address with a prefix between /16 and /24, e.g. 10.40.0.0/16."
  }
}

variable "az_count" {
  description = "Number of availability zones (one private subnet and route table each)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number between 2 and 4."
  }
}

variable "interface_endpoint_services" {
  description = "AWS services reached through interface endpoints from the private subnets (short names, e.g. sqs, states). Only what the functions' code calls: logs and traces are delivered by the Lambda service and KMS is called by the services on the functions' behalf, so logs, xray and kms need none. S3 and DynamoDB always use free gateway endpoints."
  type        = list(string)
  default     = ["sqs", "sns", "states", "ssm", "monitoring"]

  validation {
    condition     = alltrue([for s in var.interface_endpoint_services : can(regex("^[a-z0-9][a-z0-9.-]*$", s))])
    error_message = "interface_endpoint_services entries must be short service names such as sqs or ecr.api."
  }

  validation {
    condition     = length(setintersection(toset(var.interface_endpoint_services), toset(["s3", "dynamodb"]))) == 0
    error_message = "s3 and dynamodb are served by gateway endpoints; do not list them as interface endpoints."
  }
}

variable "enable_nat_gateway" {
  description = "Add public subnets, an internet gateway and one NAT gateway so functions can reach the internet on 443 (e.g. an external processor)."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow log group (security evidence: PCI DSS 10.5.1 asks for a year)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "logs_kms_key_arn" {
  description = "ARN of the CMK that encrypts the flow log group."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.logs_kms_key_arn))
    error_message = "logs_kms_key_arn must be a KMS key ARN."
  }
}
