"""The operator CLI of the payment platform (``ops``): on-call commands over a deployed stack.

Depends on :mod:`payments` (the jobs it shares with the scheduled Lambdas) and on runtime
libraries only (boto3, click, rich); the local build/emulator tooling lives in :mod:`devkit`.
"""

__version__ = "0.1.0"
