"""Which classifier architectures the harness can split, and where their head sits.

A layout names the head's linear layers (dotted module paths, input to output) and the activation
between them. The head's input is whatever the first of those layers receives in the checkpoint's
own forward pass (captured by a hook), so the feature extractor is exactly the checkpoint's code up
to that point. Adding an architecture is one line here, checked by the logits test at load time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadLayout:
    layers: tuple[str, ...]  # the head's nn.Linear modules, input to output
    activation: str  # between them: relu | tanh
    about: str  # what is attacked, in one line


_BERT_ABOUT = ("the tanh pooler is trained with the classifier and attacked as the head's first layer: "
               "bert.pooler.dense -> tanh -> classifier, on [CLS]'s final hidden state")
LAYOUTS: dict[str, HeadLayout] = {
    "DistilBertForSequenceClassification": HeadLayout(
        ("pre_classifier", "classifier"), "relu", "pre_classifier -> ReLU -> classifier, on the first token's final hidden state"),
    "BertForSequenceClassification": HeadLayout(("bert.pooler.dense", "classifier"), "tanh", _BERT_ABOUT),
    "RobertaForSequenceClassification": HeadLayout(
        ("classifier.dense", "classifier.out_proj"), "tanh", "classifier.dense -> tanh -> out_proj, on <s>'s final hidden state"),
    "ViTForImageClassification": HeadLayout(
        ("classifier",), "relu", "a linear classifier on the final layer-normed [CLS] token (a linear head: weighted-sum verdict)"),
}


def supported() -> str:
    return ", ".join(sorted(LAYOUTS))
