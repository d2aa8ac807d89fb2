"""Helpers shared by every part of the test suite: example configs (``configs``), polling
(``waiting``), embedded runs (``runs``), random genomes (``genomes``) and environments
that misbehave (``faulty_envs``)."""
