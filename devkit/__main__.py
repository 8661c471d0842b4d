from devkit.cli.main import cli

cli()
