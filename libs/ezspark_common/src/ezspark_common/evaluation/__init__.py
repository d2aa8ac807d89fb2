"""Playing genomes in environments: batched games (``batch``), from outputs to actions
(``actions``), which environments a config may name (``envs``, ``masked_envs``), lockstep
game sets (``games``) and recorded replays (``replay``).  Used by the embedded trainer,
the evaluator service and the gateway."""
