provider "aws" {
  region = local.region

  default_tags {
    tags = merge(
      {
        Project            = "payment-platform"
        Environment        = var.environment_suffix
        ManagedBy          = "terraform"
        DataClassification = "pci-tokenized"
      },
      var.tags,
    )
  }
}
