"""The ``ops`` command line (click + rich). Logic lives in ``ops.core``; this package only presents it."""
