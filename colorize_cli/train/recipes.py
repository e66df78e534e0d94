"""Training recipes: each model's loss and optimizers, one optimisation step per call.

A recipe holds the raw model (what checkpoints save) and `network`, the module it calls forward on:
the same model, or its DistributedDataParallel wrapper after `distribute`.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorize_cli.colour.ab_bins import rebalance_weights, soft_encode
from colorize_cli.colour.lab import unit_to_ab
from colorize_cli.models.gan import PatchDiscriminator
from colorize_cli.train.feature_loss import ColourFeatureLoss

# Squared unit-scale ab below which the Euclidean loss's gradient is damped (about 0.1 ab units), so
# that the root stays differentiable at zero error.
_EUCLIDEAN_EPS = 1e-6


def euclidean_ab_loss(output, target):
    """Mean Euclidean distance between predicted and true (a, b), halved so that an error on one channel
    weighs as in per-channel L1. AuC is a mean of this distance (clipped), so this fits the metric."""
    return (((output - target) ** 2).sum(dim=1) + _EUCLIDEAN_EPS).sqrt().mean() / 2


PIXEL_LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss}
# The gan's reconstruction losses beside its critic (pix2pix: L1).
GAN_PIXEL_LOSSES = {"l1": F.l1_loss, "euclidean": euclidean_ab_loss}
# The gan's warm-up losses. smooth_l1 has torch's beta 1: on unit-scale ab (errors below 1) it is half L2.
WARMUP_LOSSES = {**PIXEL_LOSSES, **GAN_PIXEL_LOSSES, "smooth_l1": F.smooth_l1_loss}
# Iizuka et al. 2016 weigh the scene classification against the colour loss by 1/300.
SCENE_WEIGHT = 1.0 / 300.0
# pix2pix's weight of the L1 term against the adversarial term (seed 000 §IV).
L1_LAMBDA = 100.0
# One-sided targets for the discriminator: label smoothing 0.9 / 0.1 (seed 000 §IV).
REAL_TARGET, FAKE_TARGET = 0.9, 0.1


@dataclass
class RecipeOptions:
    """What a recipe needs besides the model; `autocast()` opens the mixed-precision context."""

    lr: float
    autocast: Callable[[], AbstractContextManager]
    warmup_steps: int = 0
    ab_prior: torch.Tensor | None = None
    memory_format: torch.memory_format = torch.contiguous_format
    lr_scale: Callable[[int], float] = lambda step: 1.0  # noqa: E731 (step -> factor on every learning rate)


def rebalanced_cross_entropy(logits, ab, class_weights):
    """Zhang et al.'s loss: cross-entropy of bin logits [B,313,h,w] against the soft-encoded unit ab
    [B,2,H,W] (averaged down to h x w, as they do), each pixel weighed by its nearest bin's class weight."""
    logits = logits.float()
    if ab.shape[-2:] != logits.shape[-2:]:
        ab = F.interpolate(ab, size=logits.shape[-2:], mode="area")
    target = soft_encode(unit_to_ab(ab))
    pixel_weights = class_weights[target.argmax(dim=1)]
    cross_entropy = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    return (pixel_weights * cross_entropy).mean()


def _class_weights(options, device, **rebalance):
    """Rebalancing weights from the data's ab prior (`rebalance`: rebalance_weights' lam). A resumed run
    loads them from its state; the uniform prior is only a placeholder then."""
    prior = options.ab_prior if options.ab_prior is not None else torch.full((313,), 1.0 / 313)
    return rebalance_weights(prior.float(), **rebalance).to(device)


class Recipe:
    """Adam on one network and a per-pixel loss on unit-scale ab; subclasses change the loss or add a critic."""

    summary = "mean squared error on ab (seed 000 §II), Adam"
    default_lr = 1e-3
    betas = (0.9, 0.999)
    pixel_loss = staticmethod(F.mse_loss)
    uses_ab_prior = False

    def __init__(self, model: nn.Module, options: RecipeOptions):
        self.model = model
        self.network = self.trained_network(model)
        self.autocast = options.autocast
        self.lr, self.warmup_steps, self.lr_scale = options.lr, options.warmup_steps, options.lr_scale
        self.optimizer = torch.optim.Adam(_param_groups(model, options.lr), lr=options.lr, betas=self.betas)
        self._wrap = None

    @classmethod
    def needs_ab_prior(cls, model: nn.Module) -> bool:
        """Whether training `model` needs the training data's ab prior (for class rebalancing)."""
        return cls.uses_ab_prior

    def trained_network(self, model: nn.Module) -> nn.Module:
        """The module whose forward gives what `loss` takes (the model itself by default)."""
        return model

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap the trained networks (for DistributedDataParallel)."""
        self._wrap = wrap
        self.network = wrap(self.network)

    def loss(self, output, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named parts for the network's output on `batch`."""
        return self.pixel_loss(output.float(), batch["ab"]), {}

    def schedule(self, step: int) -> None:
        """Every learning rate at `step`: the run's decay (lr_scale) on each optimizer's own rate.

        A pretrained encoder learns only after the warm-up, at its scaled rate: the decoder first
        learns to read its features, so that early large gradients do not wreck them. Until then its
        parameters need no gradients at all, which halves the warm-up's step time. DDP reduces only the
        parameters that wanted gradients when it wrapped the network, so the network is wrapped again
        when that changes.
        """
        lr = self.lr * self.lr_scale(step)
        for group in self.optimizer.param_groups:
            if not group.get("encoder"):
                group["lr"] = lr * group.get("scale", 1.0)
                continue
            learning = step >= self.warmup_steps
            group["lr"] = lr * self.model.config.encoder_lr_scale if learning else 0.0
            if group["params"][0].requires_grad != learning:
                for parameter in group["params"]:
                    parameter.requires_grad_(learning)
                if self._wrap is not None:
                    self.network = self._wrap(self.trained_network(self.model))

    def current_lr(self) -> float:
        """The model's own learning rate as last scheduled (what the metrics log)."""
        return self.optimizer.param_groups[0]["lr"]

    def step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        """One optimisation step; returns detached losses ("loss" is the total)."""
        self.schedule(step)
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            output = self.network(batch["l"])
        total, parts = self.loss(output, batch)
        total.backward()
        self.optimizer.step()
        return {"loss": total.detach(), **{name: value.detach() for name, value in parts.items()}}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])

    def load_networks(self, state: dict) -> None:
        """Take the networks of another run's recipe state (none here), not its optimizer: --init-from."""


class RegressionRecipe(Recipe):
    """L1 or L2 on ab, as the model's config says (seeds 001 and 004 §3.2)."""

    summary = "L1 or L2 on ab as the model config's `loss` says (seeds 001, 004 §3.2), Adam"

    def __init__(self, model, options):
        super().__init__(model, options)
        self.pixel_loss = PIXEL_LOSSES[model.config.loss]


class _WithHead(nn.Module):
    """Makes a model's `method` (forward_with_scene, forward_with_logits) the forward, so that a DDP
    wrapper sees the extra head too."""

    def __init__(self, model, method):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, l_norm):
        return getattr(self.model, self.method)(l_norm)


class AutoencoderRecipe(Recipe):
    """MSE on ab plus, when the model has a scene head, cross-entropy on the dataset's scene labels."""

    summary = "mean squared error on ab + 1/300 x scene-label cross-entropy when the data has labels (Iizuka et al.), Adam"

    def trained_network(self, model):
        return _WithHead(model, "forward_with_scene")

    def loss(self, output, batch):
        ab, scenes = output
        reconstruction = self.pixel_loss(ab.float(), batch["ab"])
        if scenes is None:
            return reconstruction, {}
        labels = batch["label"]
        # Summed over the labelled images only, so a batch without labels adds 0 and keeps the graph whole.
        scene = F.cross_entropy(scenes.float(), labels, ignore_index=-1, reduction="sum")
        scene = scene / (labels >= 0).sum().clamp(min=1)
        return reconstruction + SCENE_WEIGHT * scene, {"mse": reconstruction, "scene": scene}


class ClassificationRecipe(Recipe):
    """Class-rebalanced cross-entropy over the 313 ab bins with soft-encoded targets (Zhang et al. 2016)."""

    summary = (
        "cross-entropy over the 313 ab bins with soft-encoded targets, rebalanced by the smoothed colour prior "
        "of the training data (lambda 0.5; Zhang et al. 2016), Adam"
    )
    default_lr = 3e-4
    uses_ab_prior = True

    def __init__(self, model, options):
        super().__init__(model, options)
        self.class_weights = _class_weights(options, next(model.parameters()).device)

    def loss(self, logits, batch):
        # The net predicts at a reduced size; the targets are averaged down to it (Zhang et al. do too).
        return rebalanced_cross_entropy(logits, batch["ab"], self.class_weights), {}

    def state_dict(self):
        return {**super().state_dict(), "class_weights": self.class_weights.cpu()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.class_weights = state["class_weights"].to(self.class_weights.device)


class GanRecipe(Recipe):
    """pix2pix: L1 alone for `warmup_steps` (NoGAN warm-up), then BCE against a patch critic + 100 L1
    (or the config's pixel_loss).

    Generator and discriminator are He-initialised by their constructors (seed 000 §IV).
    """

    summary = (
        "L1 (or the config's warmup_loss) warm-up of the generator, then BCE against a patch discriminator (targets 0.9 / 0.1) + 100 x L1 (or the config's pixel_loss) "
        "(pix2pix, seed 000 §IV), Adam beta1 0.5 for both nets; with the config's class_head, + class_head x the "
        "313-bin cross-entropy of its class head (Zhang et al. 2016); with the config's feature_loss, + feature_loss x "
        "the feature distance of the coloured and the true photo in a frozen ImageNet EfficientNet-Lite0 (Johnson et al. 2016)"
    )
    default_lr = 2e-4
    betas = (0.5, 0.999)

    @classmethod
    def needs_ab_prior(cls, model):
        return model.config.class_head > 0

    def __init__(self, model, options):
        super().__init__(model, options)
        self.class_head = model.config.class_head
        self.class_weights = (
            _class_weights(options, next(model.parameters()).device, lam=model.config.class_rebalance)
            if self.class_head else None
        )
        self.pixel_loss_name = model.config.pixel_loss
        self.pixel_loss = GAN_PIXEL_LOSSES[self.pixel_loss_name]
        device = next(model.parameters()).device
        self.discriminator = PatchDiscriminator(model.config).to(device, memory_format=options.memory_format)
        self.critic = self.discriminator
        self.critic_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=options.lr, betas=self.betas)
        self.warmup_loss_name = model.config.warmup_loss
        self.warmup_loss = WARMUP_LOSSES[self.warmup_loss_name]
        self.feature_weight = model.config.feature_loss
        self.feature_loss = (
            ColourFeatureLoss().to(device, memory_format=options.memory_format) if self.feature_weight else None
        )

    def distribute(self, wrap):
        super().distribute(wrap)
        self.critic = wrap(self.discriminator)

    def schedule(self, step):
        """The generator's rates as every recipe's, and the critic's under the same decay."""
        super().schedule(step)
        for group in self.critic_optimizer.param_groups:
            group["lr"] = self.lr * self.lr_scale(step)

    def trained_network(self, model):
        return _WithHead(model, "forward_with_logits") if model.config.class_head else model

    def _split(self, output):
        """(ab, class logits or None) of the trained network's output."""
        return output if self.class_head else (output, None)

    def _class_loss(self, logits, batch):
        return rebalanced_cross_entropy(logits, batch["ab"], self.class_weights)

    def _extra_losses(self, ab, logits, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The class head's and the feature loss (those configured), weighed against 100 x the pixel loss."""
        total, parts = 0.0, {}
        if logits is not None:
            parts["classes"] = self._class_loss(logits, batch)
            total = total + self.class_head * parts["classes"]
        if self.feature_loss is not None:
            with self.autocast():
                parts["features"] = self.feature_loss(batch["l"], ab, batch["ab"])
            total = total + self.feature_weight * parts["features"]
        return total, parts

    def loss(self, output, batch):
        ab, logits = self._split(output)
        warmup = self.warmup_loss(ab.float(), batch["ab"])
        # The same weights against the pixel loss as after the warm-up (there: against 100 x L1).
        extra, parts = self._extra_losses(ab, logits, batch)
        return warmup + extra / L1_LAMBDA, {self.warmup_loss_name: warmup, **parts}

    def step(self, batch, step):
        if step < self.warmup_steps:
            return super().step(batch, step)
        self.schedule(step)
        l_norm, ab = batch["l"], batch["ab"]
        with self.autocast():
            fake, logits = self._split(self.network(l_norm))

        # Critic: real and generated pairs in one forward (as BigGAN does), so each DDP forward has one backward.
        self.critic_optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            judgements = self.critic(torch.cat([l_norm, l_norm]), torch.cat([ab, fake.detach()]))
        real_logits, fake_logits = judgements.float().chunk(2)
        critic_loss = 0.5 * (_bce(real_logits, REAL_TARGET) + _bce(fake_logits, FAKE_TARGET))
        critic_loss.backward()
        self.critic_optimizer.step()

        # Generator: the critic is a frozen function here, called unwrapped so DDP expects no gradients of it.
        self.optimizer.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)
        with self.autocast():
            judged = self.discriminator(l_norm, fake)
        self.discriminator.requires_grad_(True)
        adversarial = _bce(judged.float(), 1.0)
        pixel = self.pixel_loss(fake.float(), ab)
        total = adversarial + L1_LAMBDA * pixel
        extra, extra_parts = self._extra_losses(fake, logits, batch)
        total = total + extra
        parts = {self.pixel_loss_name: pixel, "adversarial": adversarial, "critic": critic_loss, **extra_parts}
        total.backward()
        self.optimizer.step()
        return {name: value.detach() for name, value in {"loss": total, **parts}.items()}

    def state_dict(self):
        return {
            **super().state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            **({"class_weights": self.class_weights.cpu()} if self.class_head else {}),
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.discriminator.load_state_dict(state["discriminator"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        if self.class_head:
            self.class_weights = state["class_weights"].to(self.class_weights.device)

    def load_networks(self, state):
        # A fine-tune keeps the trained critic: a fresh one would judge at random and shove the generator.
        self.discriminator.load_state_dict(state["discriminator"])


RECIPES = {
    "cnn": Recipe,
    "regression": RegressionRecipe,
    "classification": ClassificationRecipe,
    "autoencoder": AutoencoderRecipe,
    "gan": GanRecipe,
}


def recipe_class(model_name: str) -> type[Recipe]:
    """The recipe that trains model `model_name`."""
    return RECIPES[model_name]


def _param_groups(model: nn.Module, lr: float) -> list[dict]:
    """Trainable parameters: the model's own at `lr`, a fine-tuned pretrained encoder in a group of its own.

    Frozen parameters stay out, so that an optimizer (and DDP) never waits for their gradients.
    """
    encoder, head = model.encoder_parameters(), model.head_parameters()
    apart = {id(p) for p in [*encoder, *head]}
    own = [p for p in model.parameters() if p.requires_grad and id(p) not in apart]
    groups = [{"params": own, "lr": lr}]
    if head:
        scale = model.config.class_head_lr_scale
        groups.append({"params": head, "lr": lr * scale, "scale": scale})
    if encoder:
        groups.append({"params": encoder, "lr": 0.0, "encoder": True})
    return groups


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
