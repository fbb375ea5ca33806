"""Generation: sampling, constraints, the decode loop."""
