"""Use cases: accounts, trainings and applying worker events.  No HTTP here."""
