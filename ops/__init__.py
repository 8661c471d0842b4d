"""Operations toolkit for the payment platform.

Kept import-light on purpose: the Lambda package ships ``ops/__init__.py`` and ``ops/core``
(boto3 only) without click or rich, so nothing here may import the CLI.
"""

__version__ = "0.1.0"
