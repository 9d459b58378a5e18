"""Fast reconstructor classification accuracy: several direction sets scored on one set of rendered scenes.

The paper's protocol (:mod:`~sefa_plugin.evaluation.rca`, ``mode="full"``) renders two fresh images per
pair at every one of ~2000 training steps and trains a full-resolution reconstructor: on a 2-core CPU that
is over ten minutes per method, almost all of it in the generator (a profile of the embedded model:
~70 % generator forward, ~30 % reconstructor forward, backward and Adam). :class:`RCAEvaluator` keeps
the same question (which of K fixed directions moved this image?) and the same evaluation (100 fresh
batches of 32 pairs, every direction equally often) but spends far fewer generator calls:

* **cached originals**: the unshifted image of every pair is rendered once per evaluation and shared by
  all methods (its latent too); a method only renders its shifted copies;
* **a rendered training pool**: the reconstructor trains on a fixed pool of ``train_pairs`` pairs
  (default :data:`DEFAULT_TRAIN_PAIRS`, sampled exactly like the paper's batches) for ``steps`` minibatches
  instead of rendering new pairs at every step; a smaller pool is overfitted (on the embedded model, 2000
  steps on 4096 pairs scored SeFa 0.82 against the full protocol's 0.91, on 16384 pairs 0.91);
* **lower resolution, smaller reconstructor**: images are area-downsampled to ``resolution`` (32) before
  the reconstructor, which is narrower (16 → 64 channels instead of 32 → 128); the tests and
  ``benchmarks/bench_rca.py`` compare it with the full protocol on the same directions;
* **chunks side by side**: on CPU the chunks are rendered in parallel threads, one torch thread each
  (:func:`~sefa_plugin.utils.parallel.map_on_cpu_threads`), which keeps small renders' cores busier than
  torch's intra-op threads do.

Nothing flows back through the generator (the directions are fixed). With several processes
(``accelerate launch``) every process renders its share of the chunks and the reconstructor's gradients
are averaged by ``accelerate``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..directions.container import Directions
from ..directions.latent_discovery import apply_shift, check_shift_range, discovery_loss, sample_shifts
from ..models.interface import EditableGenerator
from ..training.latent_discovery import keyed_generator, random_codes
from ..training.reconstructor import Reconstructor
from ..utils.checks import is_int
from ..utils.parallel import map_on_cpu_threads

__all__ = ["RCAEvaluator"]

logger = logging.getLogger(__name__)

#: Rendered training pairs of the fast protocol (each seen ~4 times in 2000 steps of 32).
DEFAULT_TRAIN_PAIRS = 16384

# RNG streams: latents of the train / eval scenes, shifts of the train / eval pairs, minibatches.
_Z_TRAIN, _Z_EVAL, _SHIFT_TRAIN, _SHIFT_EVAL, _MINIBATCH = 0, 1, 2, 3, 4


@dataclass
class RCAResult:
    """Reconstructor classification accuracy of one set of directions.

    Attributes:
        accuracy: Argmax accuracy on fresh batches (chance: ``1 / num_directions``).
        steps: Reconstructor training steps.
        seconds: Wall time of training and evaluation.
        per_direction: ``[K]`` accuracy of each direction.
        num_directions: K.
        eval_samples: Image pairs the accuracy was measured on.
        protocol: ``"fast"`` or ``"full"`` (see the module docstring).
    """

    accuracy: float
    steps: int
    seconds: float
    per_direction: torch.Tensor | None = None
    num_directions: int = 0
    eval_samples: int = 0
    protocol: str = "full"

    @property
    def chance(self) -> float:
        """Accuracy of guessing (``1 / K``)."""
        return 1.0 / self.num_directions if self.num_directions else float("nan")


@dataclass
class _Chunk:
    """One rendered batch of scenes: editable latents ``[n, num_ws, D]`` and originals ``[n, C, r, r]``."""

    latents: torch.Tensor
    originals: torch.Tensor


class RCAEvaluator:
    """Scores direction sets on one generator with a shared, rendered set of scenes (fast RCA).

    Args:
        pipe: A :class:`~sefa_plugin.pipelines.GANPipeline` or a generator.
        train_pairs: Size of the rendered training pool (rounded up to whole batches).
        eval_batches: Fresh evaluation batches (the paper: 100).
        batch_size: Pairs per batch, for rendering, training and evaluation (the paper: 32).
        resolution: Side of the images the reconstructor sees (area-downsampled; at most the generator's).
        base_channels: First convolution width of the reconstructor.
        max_channels: Widest reconstructor layer.
        lr: Adam learning rate of the reconstructor.
        shift_scale: Largest shift ``|ε|`` (paper: 6).
        min_shift: Smallest shift ``|ε|`` (paper: 0.5).
        reg_weight: Weight of the shift's L1 loss (paper: 0.25).
        noise_mode: Noise of the synthesis (``"const"``: only the shift changes the image).
        seed: Seed of the scenes, the shifts, the reconstructor and the minibatches.

    Example:

    >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
    >>> from sefa_plugin.evaluation.fast_rca import RCAEvaluator
    >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
    >>> evaluator = RCAEvaluator(pipe)  # doctest: +SKIP
    >>> evaluator.estimate_seconds(num_methods=5, steps=2000) / 60  # doctest: +SKIP
    6.1
    >>> evaluator(pipe.factorize(num_directions=10), steps=2000).accuracy  # doctest: +SKIP
    0.83
    """

    def __init__(
        self,
        pipe,
        *,
        train_pairs: int = DEFAULT_TRAIN_PAIRS,
        eval_batches: int = 100,
        batch_size: int = 32,
        resolution: int = 32,
        base_channels: int = 16,
        max_channels: int = 64,
        lr: float = 5e-4,
        shift_scale: float = 6.0,
        min_shift: float = 0.5,
        reg_weight: float = 0.25,
        noise_mode: str = "const",
        seed: int = 0,
    ) -> None:
        from accelerate import Accelerator

        generator = getattr(pipe, "generator", pipe)
        if not isinstance(generator, EditableGenerator):
            raise TypeError(f"`pipe` must be a GANPipeline or an EditableGenerator, got {type(pipe).__name__}.")
        for name, value in (("train_pairs", train_pairs), ("eval_batches", eval_batches),
                            ("batch_size", batch_size)):  # fmt: skip
            if not is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        if not is_int(resolution) or resolution < 4:
            raise ValueError(f"`resolution` must be an int ≥ 4, got {resolution!r}.")
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"`lr` must be a positive finite number, got {lr!r}.")
        check_shift_range(shift_scale, min_shift)
        self.pipe, self.generator = pipe, generator
        first = next(iter([*generator.parameters(), *generator.buffers()]), None)
        self.accelerator = Accelerator(cpu=first is None or first.device.type == "cpu")
        self.generator.to(self.accelerator.device)
        self.train_chunks = math.ceil(train_pairs / batch_size)
        self.eval_batches, self.batch_size = eval_batches, batch_size
        self.resolution, self.base_channels, self.max_channels = resolution, base_channels, max_channels
        self.lr, self.shift_scale, self.min_shift, self.reg_weight = lr, shift_scale, min_shift, reg_weight
        self.noise_mode, self.seed = noise_mode, seed
        self._originals: dict[tuple[int, int], _Chunk] = {}
        self._render_seconds_per_image: float | None = None
        self._step_seconds: float | None = None

    # ------------------------------------------------------------------ rendering
    def _mine(self, chunks: int) -> list[int]:
        """The chunks this process renders (all of them with one process)."""
        acc = self.accelerator
        return [c for c in range(chunks) if c % acc.num_processes == acc.process_index]

    @torch.no_grad()
    def _synthesize(self, latents: torch.Tensor) -> torch.Tensor:
        images = self.generator.synthesize(latents, noise_mode=self.noise_mode).float()
        if images.ndim != 4 or images.shape[2] != images.shape[3]:
            raise ValueError(f"The generator must render square images [N, C, H, W], got {list(images.shape)}.")
        if images.shape[-1] > self.resolution:
            images = F.interpolate(images, size=(self.resolution, self.resolution), mode="area")
        return images

    def _render(self, latents: list[torch.Tensor]) -> list[torch.Tensor]:
        """Images of several chunks' latents, chunks side by side on the CPU's cores (one torch thread each)."""
        t0 = time.perf_counter()
        images = map_on_cpu_threads(self._synthesize, latents, self.accelerator.device)
        if self._render_seconds_per_image is None and latents:
            self._render_seconds_per_image = (time.perf_counter() - t0) / sum(len(x) for x in latents)
        return images

    @torch.no_grad()
    def _originals_of(self, stream: int, chunks: list[int]) -> list[_Chunk]:
        """The cached original scenes of these chunks (those not rendered yet are rendered now)."""
        missing = [c for c in chunks if (stream, c) not in self._originals]
        dev = self.accelerator.device
        latents = []
        for c in missing:
            z, label = random_codes(self.generator, self.batch_size, keyed_generator(self.seed, stream, c))
            label = None if label is None else label.to(dev)
            latents.append(self.generator.sample_latents(z.to(dev), c=label, truncation_psi=1.0))
        for c, w, images in zip(missing, latents, self._render(latents), strict=True):
            self._originals[(stream, c)] = _Chunk(w, images)
        return [self._originals[(stream, c)] for c in chunks]

    def _shifts(self, stream: int, chunk: int, k: int, balanced: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n, rng = self.batch_size, keyed_generator(self.seed, stream, chunk, k)
        index, eps = sample_shifts(n, k, self.shift_scale, self.min_shift, generator=rng)
        if balanced:  # every direction equally often over the evaluation batches
            index = ((torch.arange(n) + chunk * n) % k)[torch.randperm(n, generator=rng)]
        return index, eps

    @torch.no_grad()
    def _pairs(self, vectors: torch.Tensor, layers, split: str) -> tuple[torch.Tensor, ...]:
        """Originals, shifted images, indices and shifts of this process's chunks of `split`."""
        z_stream, shift_stream, chunks = (
            (_Z_TRAIN, _SHIFT_TRAIN, self.train_chunks) if split == "train" else
            (_Z_EVAL, _SHIFT_EVAL, self.eval_batches)
        )  # fmt: skip
        mine, dev = self._mine(chunks), self.accelerator.device
        originals = self._originals_of(z_stream, mine)
        shifts = [self._shifts(shift_stream, c, len(vectors), balanced=split == "eval") for c in mine]
        index = [i.to(dev) for i, _ in shifts]
        eps = [e.to(dev) for _, e in shifts]
        moved = [
            apply_shift(o.latents, e[:, None] * vectors[i], layers)
            for o, i, e in zip(originals, index, eps, strict=True)
        ]
        shifted = self._render(moved)
        return torch.cat([o.originals for o in originals]), torch.cat(shifted), torch.cat(index), torch.cat(eps)

    # ------------------------------------------------------------------ estimate
    def _new_reconstructor(self, k: int, images: torch.Tensor) -> Reconstructor:
        """A seeded reconstructor for K directions and images shaped like `images` ``[N, C, r, r]``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return Reconstructor(
                num_directions=k, img_channels=int(images.shape[1]), img_resolution=int(images.shape[-1]),
                base_channels=self.base_channels, max_channels=self.max_channels,
            ).to(self.accelerator.device)  # fmt: skip

    def _adam(self, model: Reconstructor) -> torch.optim.Adam:
        """The reconstructor's optimizer: Adam in one fused kernel per step where torch has one (CPU, CUDA)."""
        return torch.optim.Adam(model.parameters(), lr=self.lr, fused=self.accelerator.device.type in ("cpu", "cuda"))

    def estimate_seconds(self, num_methods: int, steps: int, num_directions: int = 10, extra_images: int = 0) -> float:
        """Expected wall time of scoring `num_methods` direction sets (this process), from measured rates.

        Renders the first chunks of originals (kept) and times a few reconstructor steps on them, then
        extrapolates: originals once, each method's shifted images, its training steps and evaluation,
        plus `extra_images` other renders of the run (e.g. re-scoring) at the same rate.
        """
        # Chunks of originals, one per torch thread, rendered side by side (and kept) as the run renders them:
        # the first group warms up (oneDNN builds its kernels on first use), the next four give the rate.
        t, mine = max(torch.get_num_threads(), 1), self._mine(self.train_chunks) or [0]
        chunk = self._originals_of(_Z_TRAIN, mine[:t])[0]
        if any((_Z_TRAIN, c) not in self._originals for c in mine[t : 5 * t]):
            self._render_seconds_per_image = None
            self._originals_of(_Z_TRAIN, mine[t : 5 * t])
        if self._step_seconds is None:
            k = max(int(num_directions), 2)
            model = self._new_reconstructor(k, chunk.originals)
            optimizer = self._adam(model)
            index = torch.arange(self.batch_size, device=chunk.originals.device) % k
            eps = torch.ones(self.batch_size, device=chunk.originals.device)
            times = []
            for _ in range(4):
                t0 = time.perf_counter()
                logits, shift = model(chunk.originals, chunk.originals)
                loss = discovery_loss(logits, shift, index, eps, self.reg_weight)[0]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                times.append(time.perf_counter() - t0)
            self._step_seconds = float(np.median(times[1:]))
        assert self._render_seconds_per_image is not None
        mine = len(self._mine(self.train_chunks)) + len(self._mine(self.eval_batches))
        images = mine * self.batch_size
        cached = sum(self.batch_size for key in self._originals)
        render = self._render_seconds_per_image * (images * (1 + num_methods) - cached + extra_images)
        train = self._step_seconds * steps * num_methods
        evaluate = self._step_seconds / 3 * len(self._mine(self.eval_batches)) * num_methods
        total = render + train + evaluate
        logger.info(
            "fast RCA: estimated %.1f min for %d direction sets (%.1f ms per rendered image, %.1f ms per step)",
            total / 60, num_methods, 1000 * self._render_seconds_per_image, 1000 * self._step_seconds,
        )  # fmt: skip
        return total

    # ------------------------------------------------------------------ one method
    def __call__(self, directions: Directions, steps: int = 2000, layers: Sequence[int] | None = None):
        """Fast RCA of `directions`: train a reconstructor on the pool for `steps` minibatches, then
        measure its argmax accuracy on the evaluation batches.

        Returns:
            :class:`RCAResult`.
        """
        if not isinstance(directions, Directions):
            raise TypeError(f"`directions` must be a Directions object, got {type(directions).__name__}.")
        if not is_int(steps) or steps < 0:
            raise ValueError(f"`steps` must be an int ≥ 0, got {steps!r}.")
        use = list(directions.layers) if layers is None else [int(i) for i in layers]
        directions.check_compatible(self.generator, use)
        if use == list(range(self.generator.num_ws)):
            use = None
        acc, t0 = self.accelerator, time.perf_counter()
        vectors = directions.vectors.to(acc.device, torch.float32)
        k = int(vectors.shape[0])
        originals, shifted, index, eps = self._pairs(vectors, use, "train")
        model = self._new_reconstructor(k, originals)
        optimizer = self._adam(model)
        model, optimizer = acc.prepare(model, optimizer)
        model.train()
        bar_factory = getattr(self.pipe, "progress_bar", None)
        bar = bar_factory(total=steps) if callable(bar_factory) and acc.is_main_process else None
        for step in range(steps):
            pick = torch.randint(
                len(index),
                (self.batch_size,),
                generator=keyed_generator(self.seed, _MINIBATCH, step, acc.process_index),
            )
            pick = pick.to(acc.device)
            logits, shift = model(originals[pick], shifted[pick])
            loss = discovery_loss(logits, shift, index[pick], eps[pick], self.reg_weight)[0]
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            optimizer.step()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        del originals, shifted
        correct = torch.zeros(k, device=acc.device)
        total = torch.zeros(k, device=acc.device)
        originals, shifted, index, _ = self._pairs(vectors, use, "eval")
        model.eval()
        with torch.no_grad():
            for start in range(0, len(index), self.batch_size):
                part = slice(start, start + self.batch_size)
                hit = (model(originals[part], shifted[part])[0].argmax(dim=1) == index[part]).float()
                correct.index_add_(0, index[part], hit)
                total.index_add_(0, index[part], torch.ones_like(hit))
        correct, total = acc.reduce(correct, "sum"), acc.reduce(total, "sum")
        accuracy = float(correct.sum() / total.sum())
        seconds = time.perf_counter() - t0
        logger.info(
            "fast RCA of %d %s directions: %.3f (chance %.3f) after %d steps, %.1f s",
            k, directions.method, accuracy, 1 / k, steps, seconds,
        )  # fmt: skip
        return RCAResult(
            accuracy=accuracy,
            steps=int(steps),
            seconds=seconds,
            per_direction=(correct / total.clamp_min(1)).cpu(),
            num_directions=k,
            eval_samples=int(total.sum()),
            protocol="fast",
        )
