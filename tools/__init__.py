"""Developer tools that are not part of the gateway package (run with `python -m tools.<name>`)."""
