"""Fine-tune a classifier from a backbone card on a task's members and save it as a Hub-style checkpoint with its data splits (a case whose training set is known exactly)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from harness.cli.args import directory
from harness.errors import HarnessError
from harness.registry import MODELS, TASKS
from harness.store.store import check_writable_dir


def add_arguments(p) -> None:
    p.add_argument("task", help="task whose data, classes, members (per_class, seed) and non-members are used")
    p.add_argument("--out", required=True, type=directory, help="directory for the checkpoint (config, safetensors, tokenizer), "
                   "its data splits (data/train-*, data/test-*) and a classifier card (card.yaml)")
    p.add_argument("--model", help="backbone card to start from (default: the task's)")
    p.add_argument("--update-backbone", action="store_true", help="train every parameter (default: the backbone frozen, the head only)")
    p.add_argument("--steps", type=int, default=300, help="full-batch AdamW steps (default: 300)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def card_name(out: Path) -> str:
    """The written card's name, from the checkpoint's folder: every checkpoint's card was named `card` (its file's
    name), so two of them shared one leaderboard row label and unit-id prefix."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", out.resolve().name).lstrip("._-")[:100]
    return name or "finetuned"


def main(args) -> int:
    import torch
    import transformers

    from harness.backbones.load import Backbone, default_device
    from harness.backbones.resolve import resolve_model
    from harness.classifiers.checkpoint import read_checkpoint
    from harness.classifiers.finetune import FinetuneRecipe, finetune
    from harness.classifiers.layouts import LAYOUTS, supported
    from harness.classifiers.splits import write_splits
    from harness.data.split import load_split

    transformers.utils.logging.set_verbosity_error()  # its load report lists the new head as missing: expected here
    transformers.utils.logging.disable_progress_bar()
    if args.steps < 1:
        raise HarnessError("--steps", args.steps, "must be >= 1")
    task = TASKS.get(args.task)
    card = MODELS.get(args.model or task.model)
    field = "--model" if args.model else "model"  # the flag, or the task's own field when no flag was given
    if card.is_classifier or card.is_identity:
        raise HarnessError(field, card.name, "fine-tuning starts from a backbone card (kind: backbone, not identity)"
                           + ("" if args.model else "; pass one with --model"))
    out = check_writable_dir(args.out, "--out")  # a file or an unwritable path: one line, as run's --out
    if out.exists() and any(out.iterdir()):
        raise HarnessError("--out", str(out), "exists and is not empty; give a new directory")
    task_file = Path(args.task) if Path(args.task).is_file() else TASKS.files().get(args.task)
    base_dir = task_file.resolve().parent if task_file else None
    # the fine-tune trains with cross-entropy over the task's classes, however many: the task's head.loss is not used
    split = load_split(task.model_copy(update={"null_victim": None, "head": task.head.model_copy(update={"loss": "ce"})}),
                       base_dir)
    resolved = resolve_model(card)
    names = split.class_names
    auto = transformers.AutoModelForSequenceClassification if card.modality == "text" else transformers.AutoModelForImageClassification
    proc_cls = transformers.AutoTokenizer if card.modality == "text" else transformers.AutoImageProcessor
    path = str(resolved.path)
    processor = proc_cls.from_pretrained(path, trust_remote_code=card.trust_remote_code)
    model = auto.from_pretrained(path, num_labels=len(names), id2label=dict(enumerate(names)),
                                 label2id={n: i for i, n in enumerate(names)}, dtype=torch.float32,
                                 trust_remote_code=card.trust_remote_code, use_safetensors=card.use_safetensors)
    arch = type(model).__name__
    if arch not in LAYOUTS:
        raise HarnessError(field, card.name, f"makes a {arch}, whose head the harness cannot split; supported: {supported()}")
    model.config.architectures = [arch]
    recipe = FinetuneRecipe(update_backbone=args.update_backbone, steps=args.steps, seed=task.seed)
    device = default_device()  # the first CUDA device where there is one
    model.to(device)
    encode = Backbone(resolved, model=model, processor=processor, device=device)._encode
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # the config first: read_checkpoint checks what the harness will load
    info = read_checkpoint(str(out), out)
    report = finetune(model, info, encode, split.member_inputs, torch.as_tensor(split.member_labels).to(device), recipe,
                      progress=not args.quiet)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    write_splits(out / "data", task, split)
    (out / "finetune.json").write_text(json.dumps({"base": card.id, "base_revision": resolved.revision, "task": task.name,
                                                   **report}, indent=2))
    fields = {"name": card_name(out), "id": str(out.resolve()), "kind": "classifier", "modality": card.modality,
              "max_length": card.max_length}  # dumped, so that a path holding ' #' or ': ' stays the path
    (out / "card.yaml").write_text(
        f"# {arch} fine-tuned from {card.id} on {split.n} members of {task.name} "
        f"({'backbone updated' if args.update_backbone else 'backbone frozen'})\n"
        + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True), encoding="utf-8")
    print(f"fine-tuned {arch} on {split.n} members ({'every parameter' if args.update_backbone else 'head only'}, "
          f"{args.steps} steps, {report['wall_s']} s): train loss {report['final_loss']:.2e}, train acc {report['train_acc']:.2f}")
    print(f"checkpoint: {out}  data: {out / 'data'} (train = the members, test = {len(split.nonmember_rows)} held out)")
    print(f"attack it: recon-harness run TASK --model {shlex.quote(str(out / 'card.yaml'))}  (data.source: {out / 'data'}, "
          "nonmember_split: test)")
    return 0
