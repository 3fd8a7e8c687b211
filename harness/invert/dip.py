"""Deep Image Prior inversion (Oz et al. 2024): one small U-Net per target, all targets in one batch.

Each target b gets its own generator weights; the B generators run as one network whose
convolutions are grouped (groups=B), so a batch of targets is one forward pass. The generator
maps a fixed noise image to an RGB image in [0, 1]; its weights are optimised (Adam) so that the
frozen backbone's embedding of a randomly cropped / flipped / colour-jittered copy of the image
has maximal cosine to the target, in the attack's space (normalised as the victim's inputs,
minus the member mean). The backbone's preprocessing (resize, rescale, normalise) is redone in
torch so gradients reach the pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError
from harness.invert.space import EmbedSpace
from harness.progress import bar as progress_bar


SATURATION = 1e-3


def _gconv(cin: int, cout: int, groups: int) -> nn.Conv2d:
    return nn.Conv2d(cin * groups, cout * groups, 3, padding=1, padding_mode="reflect", groups=groups)


def _cat(a: torch.Tensor, b: torch.Tensor, groups: int) -> torch.Tensor:
    """Concatenate channels target by target (keeps the grouped layout)."""
    n, _, h, w = a.shape
    return torch.cat([a.view(n, groups, -1, h, w), b.view(n, groups, -1, h, w)], 2).view(n, -1, h, w)


class GroupedUNet(nn.Module):
    """B independent two-level U-Nets (noise -> image), evaluated together."""

    def __init__(self, groups: int, width: int = 16, noise: int = 8):
        super().__init__()
        g, c = groups, width
        self.groups = g
        act = nn.LeakyReLU(0.2)
        self.enc1 = nn.Sequential(_gconv(noise, c, g), nn.GroupNorm(g, c * g), act, _gconv(c, c, g), act)
        self.enc2 = nn.Sequential(_gconv(c, 2 * c, g), nn.GroupNorm(g, 2 * c * g), act, _gconv(2 * c, 2 * c, g), act)
        self.mid = nn.Sequential(_gconv(2 * c, 2 * c, g), act)
        self.dec2 = nn.Sequential(_gconv(4 * c, c, g), nn.GroupNorm(g, c * g), act)
        self.dec1 = nn.Sequential(_gconv(2 * c, c, g), act, _gconv(c, 3, g))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        g = self.groups
        e1 = self.enc1(z)
        e2 = self.enc2(F.avg_pool2d(e1, 2))
        m = self.mid(F.avg_pool2d(e2, 2))
        d2 = self.dec2(_cat(F.interpolate(m, scale_factor=2, mode="bilinear"), e2, g))
        out = self.dec1(_cat(F.interpolate(d2, scale_factor=2, mode="bilinear"), e1, g))
        h, w = out.shape[-2:]
        return out.view(g, 3, h, w)  # pre-activation; the image is its sigmoid


@dataclass(frozen=True)
class Geometry:
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def geometry(space: EmbedSpace) -> Geometry:
    """Input size and normalisation of an image backbone (from its image processor)."""
    card = space.backbone.card
    if card.is_identity:
        side = int(round((space.dim / 3) ** 0.5))
        return Geometry(side, side, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # [0, 1] -> [-1, 1]
    proc = space.backbone.processor
    if proc is None or not hasattr(proc, "image_mean"):
        raise HarnessError("id", card.id, "has no image processor (image_mean/size); image inversion needs one")
    size = getattr(proc, "crop_size", None) if getattr(proc, "do_center_crop", False) else None
    size = size or getattr(proc, "size", None) or {}
    size = dict(size) if not isinstance(size, int) else {"height": size, "width": size}
    h = size.get("height") or size.get("shortest_edge")
    w = size.get("width") or size.get("shortest_edge")
    if not h or not w:
        raise HarnessError("id", card.id, f"image processor size {size} has no height/width; image inversion needs one")
    mean = tuple(proc.image_mean) if getattr(proc, "do_normalize", True) else (0.0, 0.0, 0.0)
    std = tuple(proc.image_std) if getattr(proc, "do_normalize", True) else (1.0, 1.0, 1.0)
    return Geometry(int(h), int(w), mean, std)


def embed_pixels(space: EmbedSpace, images: torch.Tensor, geo: Geometry) -> torch.Tensor:
    """Differentiable centred embedding of (B, 3, H, W) images in [0, 1]."""
    bb = space.backbone
    if images.shape[-2:] != (geo.height, geo.width):
        images = F.interpolate(images, size=(geo.height, geo.width), mode="bilinear", align_corners=False)
    mean = torch.tensor(geo.mean, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(geo.std, device=images.device).view(1, 3, 1, 1)
    x = (images - mean) / std
    raw = x.reshape(len(x), -1) if bb.card.is_identity else bb.image_features(x)
    if space.normalize:
        raw = F.normalize(raw, dim=1)
    return raw - space.mean.to(raw.device)


def augment(x: torch.Tensor, gen: torch.Generator, jitter: float = 0.1, min_scale: float = 0.8) -> torch.Tensor:
    """Random resized crop (same for the batch), per-image flip and brightness/contrast jitter."""
    b, _, h, w = x.shape
    s = float(torch.empty(1).uniform_(min_scale, 1.0, generator=gen))
    ch, cw = max(int(h * s), 2), max(int(w * s), 2)
    top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
    x = F.interpolate(x[:, :, top : top + ch, left : left + cw], size=(h, w), mode="bilinear", align_corners=False)
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1).to(x.device), x.flip(-1), x)
    bright = (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1).to(x.device) * jitter
    contrast = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1).to(x.device) * jitter
    mu = x.mean((1, 2, 3), keepdim=True)
    return ((x - mu) * contrast + mu + bright).clamp(0, 1)


@dataclass
class DIPResult:
    images: torch.Tensor  # (B, 3, H, W) in [0, 1], on the CPU
    cosine: torch.Tensor  # (B,) centred cosine of the un-augmented image's embedding to its target
    seconds_per_target: float
    steps: int


def invert_images(
    space: EmbedSpace,
    targets: torch.Tensor,
    steps: int = 600,
    lr: float = 1e-2,
    width: int = 16,
    batch: int = 32,
    seed: int = 0,
    augment_frac: float = 0.25,
    refine_steps: int = 100,
    progress: bool = False,
) -> DIPResult:
    """Invert centred targets (B, d) to images. The `identity` backbone is a pass-through.

    The first `augment_frac` of the steps see randomly augmented copies (keeps the image natural);
    the rest see the image itself (so the final image, not only its augmentations, matches).
    Then `refine_steps` of Adam on the pixels themselves (in logit space), started from the
    generator's image, polish what the generator got stuck on; the best image per target is kept."""
    targets = space.check_targets(targets)
    geo = geometry(space)
    if space.backbone.card.is_identity:
        t0 = time.perf_counter()
        imgs = ((targets + space.mean).view(len(targets), 3, geo.height, geo.width) + 1) / 2
        lo = imgs.flatten(1).min(1).values.view(-1, 1, 1, 1)
        hi = imgs.flatten(1).max(1).values.view(-1, 1, 1, 1)
        imgs = (imgs - lo) / (hi - lo).clamp_min(1e-12)  # the published per-image min-max normalisation
        cos = F.cosine_similarity(embed_pixels(space, imgs, geo), targets, dim=1)
        return DIPResult(imgs, cos.detach(), (time.perf_counter() - t0) / max(len(targets), 1), 0)
    if geo.height % 4 or geo.width % 4:
        raise HarnessError("id", space.backbone.card.id, f"input size {geo.height}x{geo.width} is not a multiple of 4")
    dev = space.backbone.device
    model = space.backbone.model
    req = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    outs, coss = [], []
    t0 = time.perf_counter()
    # minutes a batch on a CPU at 224 pixels: a bar over every step of every batch of targets
    ticks = progress_bar(total=(steps + refine_steps) * -(-len(targets) // batch), desc=f"DIP ({len(targets)} images)",
                         unit="step", disable=not progress)
    try:
        for i in range(0, len(targets), batch):
            tb = targets[i : i + batch].to(dev)
            g = len(tb)
            torch.manual_seed(seed + i)
            gen = torch.Generator().manual_seed(seed + i)
            net = GroupedUNet(g, width).to(dev)
            z = torch.rand(1, 8 * g, geo.height, geo.width, generator=gen).to(dev) * 0.1
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            best_img = torch.zeros(g, 3, geo.height, geo.width)
            best_cos = torch.full((g,), -2.0)
            for step in range(steps):
                pre = net(z)
                img = torch.sigmoid(pre)
                plain = step >= augment_frac * steps
                x = img if plain else augment(img, gen)
                cos = F.cosine_similarity(embed_pixels(space, x, geo), tb, dim=1)
                # a small pull on the pre-activations keeps the sigmoid out of saturation (a flat image)
                loss = (1 - cos).sum() + SATURATION * pre.pow(2).mean((1, 2, 3)).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ticks.update()
                if plain:  # keep each target's best un-augmented image
                    better = cos.detach().cpu() > best_cos
                    best_cos = torch.where(better, cos.detach().cpu(), best_cos)
                    best_img[better] = img.detach().cpu()[better]
            logit = torch.logit(best_img.clamp(1e-3, 1 - 1e-3)).to(dev).requires_grad_(True)
            popt = torch.optim.Adam([logit], lr=0.05)
            for _ in range(refine_steps):
                img = torch.sigmoid(logit)
                cos = F.cosine_similarity(embed_pixels(space, img, geo), tb, dim=1)
                popt.zero_grad(set_to_none=True)
                (1 - cos).sum().backward()
                popt.step()
                ticks.update()
                better = cos.detach().cpu() > best_cos
                best_cos = torch.where(better, cos.detach().cpu(), best_cos)
                best_img[better] = img.detach().cpu()[better]
            coss.append(best_cos)
            outs.append(best_img)
    finally:
        ticks.close()
        for p, r in zip(model.parameters(), req):
            p.requires_grad_(r)
    wall = time.perf_counter() - t0
    return DIPResult(torch.cat(outs), torch.cat(coss), wall / len(targets), steps)
