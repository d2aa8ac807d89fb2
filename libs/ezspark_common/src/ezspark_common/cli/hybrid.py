"""``ezspark train CONFIG --gateway URL``: the alone phase here, the rest in the cluster.

Generations 0 … ``alone_training_iterations`` − 1 run with the embedded trainer on this
machine's cores (``--out`` gets the usual files).  The checkpoint is then handed to the
gateway (``POST /api/trainings/handoff``), which continues the same training; this command
follows it and writes the genomes the cluster saves every ``saving`` generations, and the
final ``best.json``, into the same folder, under the embedded trainer's names.  The folder
remembers the hand-over in ``handoff.json`` (written before the request, with the id the
gateway dedupes retries by), so ``--resume DIR`` either finishes the alone phase, retries a
hand-over that did not get through (or whose answer was lost), or follows the training.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any, NoReturn

import click

from ezspark_common.cli import remote_common
from ezspark_common.cli.client import (
    TOKEN_ENV,
    ApiError,
    ClientError,
    Gateway,
    NotLoggedInError,
    UnreachableError,
    load_stored,
    normalise_url,
    path_part,
)
from ezspark_common.cli.remote_common import EXIT_INTERRUPTED, _fail, handled
from ezspark_common.config import TrainingConfig
from ezspark_common.settings import CommonSettings
from ezspark_common.trainer.checkpoints import load_checkpoint, write_json
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import EmbeddedEvaluator
from ezspark_common.trainer.handoff import genome_file
from ezspark_common.trainer.training import TrainingState, start, state_to_dict
from ezspark_common.wire.messages import SavedGenome

HANDOFF_FILE = "handoff.json"
UPLOAD_TIMEOUT_S = 300.0  # a checkpoint of a big population is megabytes


def gateway_for(url: str) -> Gateway:
    """A client for ``url`` with this user's token for it (``$EZSPARK_TOKEN`` first)."""
    url = normalise_url(url)
    env_token = os.environ.get(TOKEN_ENV, "").strip()
    if env_token:
        return Gateway(url, env_token)
    stored = load_stored()
    if stored is None or normalise_url(stored.url) != url:
        where = f"logged in to {stored.url}, not to {url}" if stored else "not logged in"
        raise NotLoggedInError(f"{where}: run `ezspark login --url {url}` first")
    return Gateway(url, stored.token)


class Hybrid:
    """One ``train --gateway`` run: its folder, its config and the gateway."""

    def __init__(
        self, gw: Gateway, config: TrainingConfig, out: Path, config_path: str, workers: int
    ) -> None:
        self.gw, self.config, self.out, self.workers = gw, config, out, workers
        self.env_modules: list[str] = []
        self.hang_limit_s: float | None = None
        self.retry = f"ezspark train {config_path} --gateway {gw.url} --resume {out}"

    def run(self, state: TrainingState, report: Any, interval: float) -> None:
        """Alone phase (unless done), hand-over (unless done), then follow to the end."""
        marker = self._marker()
        if marker is None:
            if state.generation < self.config.alone_training_iterations and not state.finished:
                self._preflight()
                state = self._alone(state, report)
            if state.finished:
                click.echo(f"finished locally ({state.finished}); nothing to hand over")
                return
            marker = {"gateway": self.gw.url, "handoff_id": uuid.uuid4().hex}
        if "training_id" not in marker:  # not handed over yet, or the answer was lost
            marker = self._hand_over(state, marker)
        self._follow(str(marker["training_id"]), int(marker["generation"]), interval)

    def _marker(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.out / HANDOFF_FILE).read_text("utf-8"))
        except FileNotFoundError:
            return None
        if normalise_url(str(data["gateway"])) != self.gw.url:
            if "training_id" in data:
                _fail(f"{self.out} was handed over to {data['gateway']}, not to {self.gw.url}")
            data["gateway"] = self.gw.url  # never got there: this gateway instead
        return data

    def _preflight(self) -> None:
        """Refuse now, not after the alone phase, what the gateway would refuse then."""
        try:
            self.gw.get("/api/auth/me")
            self.gw.post("/api/validate", self.config.model_dump(mode="json"))
        except UnreachableError as exc:
            click.echo(f"warning: {exc}; training alone anyway (hand-over at the end)", err=True)

    def _alone(self, state: TrainingState, report: Any) -> TrainingState:
        alone = self.config.alone_training_iterations
        click.echo(f"alone phase: generations {state.generation}-{alone - 1} on this machine")
        evaluator = EmbeddedEvaluator(
            self.workers, self.env_modules, pool_alone=True, hang_limit_s=self.hang_limit_s
        )
        try:
            return run_embedded(state, evaluator, self.out, report, stop_at=alone)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: checkpoint in {self.out}; continue with `{self.retry}`")
            sys.exit(EXIT_INTERRUPTED)
        finally:
            evaluator.close()

    def _hand_over(self, state: TrainingState, marker: dict[str, Any]) -> dict[str, Any]:
        """POST the checkpoint; the marker (written first, with the request's id) gets the
        training's id, so a retry after a lost answer finds the same training."""
        marker["generation"] = state.generation
        write_json(self.out / HANDOFF_FILE, marker)
        body = {
            "config": self.config.model_dump(mode="json"),
            "checkpoint": state_to_dict(state),
            "handoff_id": marker["handoff_id"],
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        click.echo(f"handing generation {state.generation} over to {self.gw.url} ({len(raw):,} B)")
        try:
            uploader = Gateway(self.gw.url, self.gw.token, timeout=UPLOAD_TIMEOUT_S)
            created = uploader.request("POST", "/api/trainings/handoff", raw_json=raw)
        except ClientError as exc:
            self._not_handed_over(exc, state)
        marker["training_id"] = created["id"]
        write_json(self.out / HANDOFF_FILE, marker)
        click.echo(
            f"training {created['id']} continues in the cluster; Ctrl-C stops following, "
            f"not the training (`ezspark stop {created['id']}` does)"
        )
        return marker

    def _not_handed_over(self, exc: ClientError, state: TrainingState) -> NoReturn:
        kept = f"the local run is kept in {self.out} (generation {state.generation})"
        if isinstance(exc, ApiError) and exc.status == 413:
            _fail(f"the gateway refused the checkpoint as too large ({exc.detail}); {kept}")
        if isinstance(exc, ApiError) and exc.status in (401, 422):
            click.echo(f"note: {kept}", err=True)
            remote_common._report(exc)
        _fail(f"{exc}; {kept}: hand it over later with `{self.retry}`")

    def _follow(self, training_id: str, since: int, interval: float) -> None:
        """Print new generations and save new genomes until the training ends."""
        genomes_since = since

        def save_new() -> None:
            nonlocal genomes_since
            genomes_since = self._save_new(training_id, genomes_since)

        try:
            t = remote_common.follow(self.gw, training_id, since, interval, save_new)
        except KeyboardInterrupt:
            click.echo(
                f"\nstopped following; training {training_id} goes on in the cluster "
                f"(`ezspark stop {training_id}` stops it; `{self.retry}` follows it again)",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)
        self._ended(t)

    def _save_new(self, training_id: str, since: int) -> int:
        """Write the genomes saved since generation ``since``; the next one to ask for."""
        config = self.config.model_dump()
        while True:
            page = self.gw.get(
                f"/api/trainings/{path_part(training_id)}/genomes", since=since, limit=100
            )
            for item in page["items"]:
                if item["generation_best"] is not None:
                    saved = SavedGenome.model_validate(item["generation_best"])
                    (self.out / "genomes").mkdir(exist_ok=True)
                    name = f"gen-{saved.generation:06d}.json"
                    write_json(self.out / "genomes" / name, genome_file(saved, config))
                if item["best_so_far"] is not None:
                    best = SavedGenome.model_validate(item["best_so_far"])
                    write_json(self.out / "best.json", genome_file(best, config))
            since = int(page["next_since"])
            if len(page["items"]) < 100:
                return since

    def _ended(self, t: dict[str, Any]) -> None:
        line = remote_common._outcome_line(t)
        click.echo(f"{line}; best genome in {self.out / 'best.json'}")


@handled
def run_hybrid(
    settings: CommonSettings,
    config: TrainingConfig,
    config_path: str,
    url: str,
    out_dir: str,
    resume_dir: str | None,
    workers: int | None,
    interval: float,
    report: Any,
    *,
    hang_limit_s: float | None = None,
) -> None:
    """The ``train --gateway`` command body (see the module docstring)."""
    gw = gateway_for(url)
    if resume_dir is not None:
        out = Path(resume_dir)
        state = load_checkpoint(out)
        _same_config(state.config, config)
    else:
        out, state = Path(out_dir), start(config)
        if (out / HANDOFF_FILE).exists():  # else this run would follow that one's training
            _fail(f"{out} holds a handed-over run: follow it with --resume {out} or pick --out")
    hybrid = Hybrid(gw, config, out, config_path, workers or os.cpu_count() or 1)
    hybrid.env_modules = list(settings.env_module_list)
    hybrid.hang_limit_s = hang_limit_s
    hybrid.run(state, report, interval)


def _same_config(saved: TrainingConfig, given: TrainingConfig) -> None:
    """The cluster continues the checkpoint's config exactly: nothing may change."""
    a, b = saved.model_dump(), given.model_dump()
    changed = sorted(k for k in a if a[k] != b[k])
    if changed:
        _fail(f"the config differs from the checkpoint in {changed}", code=2)
