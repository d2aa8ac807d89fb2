"""Importing this package registers ``Catch-v0`` with Gymnasium (EzSpark imports it when
``EZSPARK_ENV_MODULES`` lists ``my_env``)."""

import gymnasium as gym

# A module path, not the class: EzSpark's worker processes and evaluators build the
# environment in processes of their own, from this string.
gym.register(id="Catch-v0", entry_point="my_env.catch:CatchEnv", max_episode_steps=400)
