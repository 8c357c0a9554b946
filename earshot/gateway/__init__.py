"""One conversation gateway for every channel (issue 20): adapters only translate."""
