"""Use cases of the application journey: each opens one unit of work and commits once."""
