"""EzSpark: NEAT neuroevolution as a library, the ``ezspark`` command and the services' core.

The package is in layers; a module imports only from its own layer and the ones before
it in this list (``tests/unit/test_layout.py`` checks):

1. ``config``, ``suggest``, ``quotas``, ``settings``, ``logging``, ``rng`` (modules): the
   basics every part shares.
2. ``neat``: the engine: genomes, networks, species, reproduction.  Pure.
3. ``evaluation``: playing genomes in environments: batched games, actions, environment
   ids, lockstep game sets, recorded replays.
4. ``wire``: the messages between the services, their binary frames, queue names and
   broker permissions.
5. ``trainer``: a training run's state machine, the generation loop shared by
   ``ezspark train`` and the evolver, tasks, and the embedded trainer's evaluators and
   run folder.
6. ``cli``: the ``ezspark`` command (it never needs the broker).
7. ``broker``: the message broker, the only importer of pika (the ``broker`` extra).
8. ``service``: the start-up and announcements the three services share.
"""
