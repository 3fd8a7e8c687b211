"""Load a resolved backbone and embed texts or images in batches, on GPU when there is one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from harness.backbones.resolve import ResolvedModel
from harness.classifiers.checkpoint import (WEIGHT_ERRORS, ClassifierHead, load_classifier, quiet_transformers,
                                           read_checkpoint, weights_error)
from harness.errors import HarnessError
from harness.progress import bar as progress_bar


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def to_rgb(im: Any) -> Any:
    """A PIL image in RGB as transformers' image processors make it (transparency composited onto white; grayscale
    and palette images expanded), so that every backbone, the identity's pixels and the report's member images see
    one picture; arrays pass as they are."""
    if not hasattr(im, "convert") or im.mode == "RGB":
        return im
    if im.mode in WIDE_MODES:  # PIL would clip them to 8 bits: most pixels white (16-bit) or black (float)
        raise HarnessError("image mode", im.mode, "16-bit and float pictures would be cut to 8 bits (most pixels white "
                           "or black); scale them to 8-bit RGB first, e.g. Image.fromarray((a / a.max() * 255).astype('uint8'))")
    if "A" in im.getbands() or im.info.get("transparency") is not None:
        from PIL import Image

        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")


def pixels_to_unit_range(images: Sequence[Any]) -> torch.Tensor:
    """PIL images (or HxWxC uint8 arrays) -> (N, C, H, W) float tensor in [-1, 1]."""
    arrs = [np.asarray(to_rgb(im), dtype=np.float32) for im in images]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise HarnessError("images", sorted(shapes)[:3], "all images must share one size for the identity backbone")
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)
    return x / 127.5 - 1.0


@dataclass
class Backbone:
    resolved: ResolvedModel
    model: Any = None
    processor: Any = None  # tokenizer (text) or image processor (image)
    device: torch.device = field(default_factory=default_device)
    classifier: ClassifierHead | None = None  # a classifier card: the checkpoint's head; embeddings are its inputs

    @property
    def card(self):
        return self.resolved.card

    @property
    def max_length(self) -> int:
        """Tokens per text: the card's max_length, within what the model takes (its position table; a card's
        default of 128 on a model of 64 positions, or a CLIP text tower's 77, would otherwise fail on long texts)."""
        limit = token_limit(self.model, self.processor)
        return self.card.max_length if limit is None else min(self.card.max_length, limit)

    def pool(self, out: Any, mask: torch.Tensor | None) -> torch.Tensor:
        """The card's pooling of a model output (mask: which tokens count for `mean`; None: all)."""
        pooling = self.card.pooling
        if pooling == "pooler":
            if getattr(out, "pooler_output", None) is None:
                raise HarnessError("pooling", "pooler", f"{self.card.id} has no pooler output; use cls or mean")
            return out.pooler_output
        hidden = out.last_hidden_state
        if pooling == "cls":
            return hidden[:, 0]
        if mask is None:
            return hidden.mean(1)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)

    def _encode(self, batch: Sequence[Any]) -> dict[str, torch.Tensor]:
        """The model's keyword inputs for a batch of texts or images, on its device."""
        if self.card.modality == "text":
            return dict(self.processor(
                list(batch), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(self.device))
        # RGB first: a ViT processor's config converts nothing, and a grayscale or RGBA picture failed its 3-channel mean
        images = [to_rgb(im) for im in batch]
        return {"pixel_values": self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)}

    def seen(self, image: Any) -> np.ndarray:
        """An image as this backbone sees it before normalisation (resized, cropped), HxWx3 in [0, 1]."""
        if self.card.is_identity or self.processor is None:
            return np.asarray(to_rgb(image), dtype=np.float32) / 255.0
        pv = self.processor(images=[to_rgb(image)], do_normalize=False, return_tensors="pt")["pixel_values"][0]
        return pv.permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)

    @torch.inference_mode()
    def embed_batch(self, batch: Sequence[Any]) -> torch.Tensor:
        """Raw pooled embeddings (not normalised) of one batch, as float32 on the CPU; for a classifier
        card, the inputs its own head receives."""
        card = self.card
        if card.is_identity:
            return pixels_to_unit_range(batch).reshape(len(batch), -1)
        enc = self._encode(batch)
        if card.modality == "image":
            return self.image_features(enc["pixel_values"]).float().cpu()
        if self.classifier is not None:
            return self.classifier.forward(self.model, enc)[0].cpu()
        if card.pooling == "clip":
            return _features(self.model.get_text_features(**enc)).float().cpu()
        return self.pool(self.model(**enc), enc.get("attention_mask")).float().cpu()

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Raw features of processed pixels, differentiable (image inversion differentiates through them)."""
        if self.classifier is not None:
            return self.classifier.forward(self.model, {"pixel_values": pixel_values})[0]
        if self.card.pooling == "clip":
            return _features(self.model.get_image_features(pixel_values=pixel_values))
        return self.pool(self.model(pixel_values=pixel_values), None)

    def embed(self, inputs: Sequence[Any], batch_size: int = 64, progress: bool = True) -> torch.Tensor:
        """Raw embeddings of `inputs`, in their order. Texts are batched by token length (less padding;
        the rows come back in the given order)."""
        order = self._by_length(inputs, batch_size)
        chunks = []
        bar = progress_bar(total=len(inputs), desc=f"embed {self.card.name}", unit="x", disable=not progress)
        for i in range(0, len(inputs), batch_size):
            batch = [inputs[j] for j in order[i : i + batch_size]]
            chunks.append(self.embed_batch(batch))
            bar.update(len(batch))
        bar.close()
        if not chunks:
            return torch.empty(0, 0)
        out = torch.cat(chunks)
        back = torch.empty_like(out)
        back[torch.as_tensor(order)] = out
        return back

    def _by_length(self, inputs: Sequence[Any], batch_size: int) -> list[int]:
        """Indices of `inputs` by token count (stable), for texts in more than one batch; as given otherwise
        (one batch pads to its longest text whatever the order, and the extra tokenisation would buy nothing)."""
        if self.card.modality != "text" or self.card.is_identity or len(inputs) <= batch_size:
            return list(range(len(inputs)))
        ids = self.processor(list(inputs), truncation=True, max_length=self.max_length)["input_ids"]
        return sorted(range(len(inputs)), key=lambda i: len(ids[i]))

    def check_head(self, inputs: Sequence[Any]) -> float:
        """A classifier card: features -> converted head reproduce the checkpoint's logits on `inputs`."""
        return self.classifier.check(self.model, self._encode(inputs), len(inputs))


POSITION_OFFSET = {"roberta", "xlm-roberta", "camembert", "data2vec-text"}  # position ids start after the padding id


def token_limit(model: Any, processor: Any) -> int | None:
    """The most tokens `model` takes per text, specials included: its tokenizer's model_max_length (when set) and
    its position table (less RoBERTa's offset), whichever is smaller; None when neither says."""
    limits = []
    said = getattr(processor, "model_max_length", None)
    if isinstance(said, int) and said < 1_000_000:  # transformers' 'unset' is a huge number
        limits.append(said)
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int):
        offset = (getattr(config, "pad_token_id", 0) or 0) + 1 if getattr(config, "model_type", "") in POSITION_OFFSET else 0
        limits.append(positions - offset)
    return min(limits) if limits else None


def _features(out: Any) -> torch.Tensor:
    """CLIP get_*_features returns a tensor in some versions and an output object in others."""
    if isinstance(out, torch.Tensor):
        return out
    for name in ("pooler_output", "image_embeds", "text_embeds"):
        value = getattr(out, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"unexpected CLIP feature output {type(out).__name__}")


def _check_weight_format(resolved: ResolvedModel) -> None:
    """Pickled weights only (*.bin, no *.safetensors) under a card that loads safetensors only: say so, not
    transformers' 'no file named model.safetensors'."""
    path, card = resolved.path, resolved.card
    if not card.use_safetensors or path is None or any(path.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in path.glob("*.bin"))
    if pickled:
        raise HarnessError(
            "use_safetensors", True, f"{card.id} holds only pickled weights ({', '.join(pickled[:3])}), which "
            "can run code when loaded; convert them to safetensors (model.save_pretrained(dir) saves safetensors), "
            "or set use_safetensors: false in the card if the file is trusted",
        )
    if (path / "config.json").is_file() and resolved.revision and not resolved.revision.startswith("local"):
        # a Hub snapshot is fetched without pickled weights: a revision that has only those arrives without any
        raise HarnessError(
            "use_safetensors", True, f"{card.id}@{resolved.revision[:12]} has no safetensors weights (pickled weights, "
            "which can run code when loaded, are not fetched); pin a revision that has model.safetensors, or set "
            "use_safetensors: false in the card if its pickled weights are trusted",
        )


def _check_classifier_modality(card, info) -> None:
    """A classifier card's modality is its checkpoint's: an image classifier does not take text, nor the reverse."""
    want = "image" if info.architecture.endswith("ForImageClassification") else "text"
    if card.modality != want:
        kind = "an image classifier" if want == "image" else "a text classifier"
        raise HarnessError(
            "modality", card.modality, f"{card.id} is {kind} ({info.architecture}); set modality: {want} in the card "
            f"(and give the task {'image' if want == 'image' else 'text'} data)",
        )


def load_backbone(resolved: ResolvedModel, device: torch.device | None = None) -> Backbone:
    card = resolved.card
    device = device or default_device()
    if card.is_identity:
        return Backbone(resolved, device=torch.device("cpu"))
    import transformers

    transformers.utils.logging.disable_progress_bar()  # our own progress display covers loading
    # float32 whatever dtype the checkpoint was saved in (transformers loads "auto": a float16 save ran in float16)
    kwargs = dict(trust_remote_code=card.trust_remote_code, use_safetensors=card.use_safetensors, dtype=torch.float32)
    path = str(resolved.path)
    _check_weight_format(resolved)
    info = read_checkpoint(card.id, resolved.path) if card.is_classifier else None
    if info is not None:
        _check_classifier_modality(card, info)
    try:
        with quiet_transformers():
            processor = _processor(transformers, card, path)
    except (OSError, ValueError) as exc:
        part = "tokenizer" if card.modality == "text" else "image processor"
        raise HarnessError("id", card.id, f"has no loadable {part} ({str(exc).splitlines()[0]})") from None
    classifier = None
    if info is not None:
        auto = transformers.AutoModelForSequenceClassification if card.modality == "text" else transformers.AutoModelForImageClassification
        model, classifier = load_classifier(auto, path, info, kwargs)
    else:
        try:
            with quiet_transformers():
                model = transformers.AutoModel.from_pretrained(path, **kwargs)
        except WEIGHT_ERRORS as exc:
            raise HarnessError("id", card.id, weights_error(exc)) from None
    if card.pooling == "clip" and info is None:
        features = "get_text_features" if card.modality == "text" else "get_image_features"
        if not callable(getattr(model, features, None)):
            raise HarnessError("pooling", "clip", f"{card.id} is a {type(model).__name__}, not a CLIP model (it has no "
                               f"{features} projection); use mean or cls")
    model.eval().to(device)
    return Backbone(resolved, model=model, processor=processor, device=device, classifier=classifier)


def _processor(transformers, card, path: str):
    if card.modality == "text":
        return transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=card.trust_remote_code)
    return transformers.AutoImageProcessor.from_pretrained(path, trust_remote_code=card.trust_remote_code)
