"""The training form: every config key, grouped, with the spec's help text and example.

Help texts follow /spec/create-a-training (key names corrected where the spec misspells
them); defaults are the spec's example config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ezspark_common.config import EXTRA_KEYS, SPEC_KEYS

# The spec's example config, value for value.
EXAMPLE: dict[str, Any] = {
    "gym_game_name": "CartPole-v0",
    "alone_training_iterations": 60,
    "input_size": 4,
    "output_size": 2,
    "initial_population": 100,
    "species_threshold": 3,
    "generations": 600000,
    "percentage_survivors_per_specie": 0.3,
    "connection_mutation_rate": 0.8,
    "new_connection_assignment_rate": 0.1,
    "add_connection_big_specie_rate": 0.3,
    "add_connection_small_specie_rate": 0.03,
    "add_node_specie_rate": 0.05,
    "activate_connection_rate": 0.25,
    "remove_connection_rate": 0.01,
    "children": 1,
    "crossover_rate": 0.1,
    "saving": 1,
    "keep_parents": 1,
    "limiting_species": 15,
    "limiting_threshold": 5,
    "max_population": 20000,
    "same_fitness_limit": 10,
    "age_significance": 0.3,
    "max_number_of_games": 5,
    "max_number_of_steps": 200,
    "safeness": 0.5,
    "sub_games": 1,
    "minimum_reward": 0,
}

HELP: dict[str, str] = {
    "gym_game_name": "The actual name of your environment (the name you registered on "
    "your local machine).",
    "alone_training_iterations": "The number of generations you run by yourself on your "
    "local machine before connecting with other users.",
    "input_size": "The number of values of your observation (the length of the array "
    "returned by your environment's step and reset functions).",
    "output_size": "The number of all the possible discrete actions you can take; for a "
    "continuous (Box) action space, the number of action values (outputs are mapped onto "
    "the action bounds).",
    "initial_population": "The initial number of genomes generated at the first generation.",
    "species_threshold": "The higher the threshold, the fewer species will be created "
    "during the genetic algorithm.",
    "generations": "The number of generations you decided to run.",
    "percentage_survivors_per_specie": "0<p<=1: the top % of genomes from which new "
    "genomes are generated for each species.",
    "connection_mutation_rate": "0<=p<=1: the probability to change the weight of a "
    "connection between 2 nodes in a genome.",
    "new_connection_assignment_rate": "0<=p<=1: given that a connection weight must "
    "change, the probability to assign a completely new weight instead of shifting the "
    "existing one by a small value.",
    "add_connection_big_specie_rate": "0<=p<=1: the probability to add a new connection "
    "between 2 nodes of a genome that is in a species with a lot of other genomes.",
    "add_connection_small_specie_rate": "0<=p<=1: the probability to add a new connection "
    "between 2 nodes of a genome that is in a species with few other genomes.",
    "add_node_specie_rate": "0<=p<=1: the probability to split a connection and add a new node.",
    "activate_connection_rate": "0<=p<=1: the probability to activate a deactivated connection.",
    "remove_connection_rate": "0<=p<=1: the probability to deactivate an activated connection.",
    "children": "Number of new genomes generated from each species (multiplied by another factor).",
    "crossover_rate": "0<=p<=1: the probability of inter-species crossover among the best genomes.",
    "saving": ">=1: every `saving` generations the best genome of the generation is saved.",
    "keep_parents": "Either 0 or 1: when 1, the best genomes of each species survive into "
    "the next generation.",
    "limiting_species": "A species that did not improve its best fitness for this many "
    "generations is killed.",
    "limiting_threshold": "< limiting_species: a species that did not improve its best "
    "fitness for this many generations has its add_connection and remove_connection "
    "rates switched.",
    "max_population": "The maximum number of genomes in each generation.",
    "same_fitness_limit": "If the training did not improve the best fitness for this "
    "many generations, the add_connection rates are increased.",
    "age_significance": "0<=p<=1: how much a species' age counts when computing its "
    "fitness; the younger the species the higher its fitness, so higher values give "
    "young species a chance sooner.",
    "max_number_of_games": "The maximum number of games each genome plays per generation.",
    "max_number_of_steps": "The maximum number of steps a genome makes in each game "
    "before the game counts as done.",
    "safeness": "0<=p<=1: the higher the safeness, the safer the training, but also "
    "slower and more resource-hungry.",
    "sub_games": "1<=s<=max_number_of_games: the number of games each client plays in "
    "parallel for each assigned genome. Higher = faster = more resources needed.",
    "minimum_reward": "The minimum reward your environment's step(action) function can give.",
    "seed": "Optional: random seed (>= 0) so a run can be repeated exactly. Default 0.",
    "fitness_threshold": "Optional: stop as soon as the best fitness reaches this value. "
    "Leave blank to run every generation.",
    "trusted_evaluators_only": "Optional, true/false: only your own machines and the "
    "operator's evaluators play this training's games, never other users' volunteers.",
    "target_species": "Optional: adapt species_threshold each generation to keep about this "
    "many species. Leave blank for a fixed threshold.",
    "intraspecies_crossover_rate": "Optional, 0<=p<=1: the share of children bred by crossing "
    "two survivors of the same species (the NEAT paper's 0.75 by default).",
    "weight_init_std": "Optional, >0: the spread of fresh weights and biases (normal, mean 0). "
    "Default 2.5 (1 with recurrent).",
    "weight_mutation_power": "Optional, >=0: the spread of the small shifts applied to a "
    "weight when it changes by a little. Default 1.25 (0.5 with recurrent).",
    "recurrent": "Optional, true/false: networks with memory. Connections may form loops and "
    "every node keeps its value from one step to the next (reset for each game), for "
    "environments whose observations do not tell everything. Default false.",
    "novelty_weight": "Optional, 0<=w<=1: the share of selection given to doing something "
    "new (each observation value's range over a game, compared with the generation's other "
    "genomes) instead of fitness. For sparse rewards, where most genomes score the same. "
    "Default 0 (fitness only).",
    "elites_per_species": "Optional, >=1: with keep_parents 1, carry over only the best this "
    "many survivors of each species instead of all of them. Leave blank for all.",
    "normalize_inputs": "Optional, true/false: feed the networks each observation value "
    "centred and scaled by its mean and spread over 30 games of random actions, so inputs of "
    "very different ranges start equal. Default false (raw observations).",
    "elitism": "Optional, species/population: with keep_parents 1, which genomes are carried "
    "over unchanged: each species' best (species), or as many of the whole generation's best, "
    "wherever they are (population). Default species.",
    "threshold_games": "Optional, >=1, with fitness_threshold: stop only when a genome holds "
    "the threshold as its mean over its latest this many games, those of every generation it "
    "was played in (above max_number_of_games it needs keep_parents 1). Leave blank to stop "
    "on one generation's games.",
}

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Environment",
        (
            "gym_game_name",
            "input_size",
            "output_size",
            "minimum_reward",
            "max_number_of_games",
            "max_number_of_steps",
            "sub_games",
        ),
    ),
    ("Run", ("generations", "alone_training_iterations", "saving", "safeness")),
    (
        "Population and species",
        (
            "initial_population",
            "max_population",
            "species_threshold",
            "percentage_survivors_per_specie",
            "children",
            "keep_parents",
            "limiting_species",
            "limiting_threshold",
            "same_fitness_limit",
            "age_significance",
        ),
    ),
    (
        "Mutation and crossover",
        (
            "connection_mutation_rate",
            "new_connection_assignment_rate",
            "add_connection_big_specie_rate",
            "add_connection_small_specie_rate",
            "add_node_specie_rate",
            "activate_connection_rate",
            "remove_connection_rate",
            "crossover_rate",
        ),
    ),
    ("Optional", EXTRA_KEYS),
)


# Inputs that are not free text: the allowed values, as (value, label).
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "keep_parents": (("1", "1: the best genomes survive"), ("0", "0: only new genomes")),
    "trusted_evaluators_only": (("false", "false"), ("true", "true")),
    "recurrent": (("false", "false"), ("true", "true")),
    "normalize_inputs": (("false", "false"), ("true", "true")),
    "elitism": (("species", "species"), ("population", "population")),
}


@dataclass(frozen=True)
class FormField:
    """One input of the training form (``choices``: a select instead of a text box)."""

    key: str
    help: str
    default: str
    required: bool
    choices: tuple[tuple[str, str], ...] = ()


def form_groups() -> list[tuple[str, list[FormField]]]:
    """Every config key once, in its group, with help text and default value."""
    return [
        (
            title,
            [
                FormField(
                    key=k,
                    help=HELP[k],
                    default=form_text(EXAMPLE.get(k)),
                    required=k in SPEC_KEYS,
                    choices=CHOICES.get(k, ()),
                )
                for k in keys
            ],
        )
        for title, keys in GROUPS
    ]


def field_order() -> list[str]:
    """The form's keys in the order they appear on the page."""
    return [k for _, keys in GROUPS for k in keys]


def form_text(value: Any) -> str:
    """A config value as the form shows it (JSON spelling for booleans, blank for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
