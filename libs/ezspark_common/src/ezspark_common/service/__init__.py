"""What the three services share: start-up and shutdown (``main``) and evaluators'
announcements (``announce``).  Needs the ``broker`` extra."""
