"""Knowledge: the knowledge base, the Misunderstood queue and the answers learned from it."""
