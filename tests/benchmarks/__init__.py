"""`make bench`: the gateway's benchmark (see bench.py). Nothing here is collected by pytest."""
