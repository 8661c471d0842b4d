provider "aws" {
  region = local.region

  # Environment and ManagedBy come last so var.tags cannot disguise a stack.
  default_tags {
    tags = merge(
      {
        Project            = "payment-platform"
        DataClassification = "pci-tokenized"
      },
      var.tags,
      {
        Environment = var.environment_suffix
        ManagedBy   = "terraform"
      },
    )
  }
}
