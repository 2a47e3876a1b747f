"""`python -m mailtriage` is the same as the `mailtriage` command."""

from mailtriage.cli import main

raise SystemExit(main())
