"""`python -m cowest_graph.cli` (e.g. under `accelerate launch`)."""

from cowest_graph.cli import main

main()
