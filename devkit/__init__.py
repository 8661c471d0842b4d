"""Development tooling of the payment platform: Lambda build, Terraform runner, emulators and their
shims, local up/down and the demo.

Installed with the ``devkit`` extra (``pip install .[devkit]``) and run as ``devkit`` or
``python -m devkit``. It may import :mod:`payments` and :mod:`ops`; neither imports it.
"""
