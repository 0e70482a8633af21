"""``python -m iopaint_sdk``: the `iopaint` command line, for when another `iopaint` is on PATH."""

from iopaint_sdk.cli import main

raise SystemExit(main())
